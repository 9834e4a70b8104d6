//! The `chaos` section of the settings, put in force by
//! [`Registry::apply`](crate::Registry::apply): checked with the rest (names
//! declared, constructors registered), then installed; an entry that did
//! not change keeps its counts.

use std::collections::BTreeSet;

use super::armed::Armed;
use crate::manifest::{self, Name};
use crate::registry::Registry;
use crate::settings::Settings;

/// What `apply` will change in the table.
#[derive(Debug, Default)]
pub(crate) struct ChaosPlan {
    install: Vec<Armed>,
}

impl Registry {
    /// Checks the `chaos` section; `global`: the names are checked against
    /// the program's call sites.
    pub(crate) fn plan_chaos(
        &self,
        settings: &Settings,
        global: bool,
        out: &mut BTreeSet<(String, String)>,
    ) -> ChaosPlan {
        let mut plan = ChaosPlan::default();
        let declared: Vec<String> = if global {
            let mut names: Vec<String> = manifest::call_sites()
                .flat_map(|site| {
                    let default = format!("{}::{}", site.module(), site.function());
                    match site.name() {
                        Name::Static(name) => vec![name.to_owned(), default],
                        _ => vec![default],
                    }
                })
                .collect();
            names.sort();
            names.dedup();
            names
        } else {
            Vec::new()
        };
        let in_force = self.chaos.set_by_settings();
        for (name, injection) in &settings.chaos {
            if global
                && !declared.iter().any(|d| d == name)
                && !settings.allows_dynamic(name)
                && self.chaos.status(name).is_none()
            {
                let message = match resilience_spec::did_you_mean(name, declared.iter().map(String::as_str)) {
                    Some(near) => format!("no policy or function of this program is named `{name}`: did you mean `{near}`?"),
                    None => format!("no policy or function of this program is named `{name}` (chaos applies to a layer's static `name` or a function's default name, `module::function`)"),
                };
                out.insert((format!("chaos.{name}"), message));
                continue;
            }
            let unchanged = in_force
                .iter()
                .any(|(n, spec)| &**n == name && spec == injection);
            if unchanged {
                continue;
            }
            match self.chaos.arm(name, injection.clone(), true) {
                Ok(armed) => plan.install.push(armed),
                Err(e) => {
                    for p in e.problems() {
                        let at = match p.key() {
                            "" => format!("chaos.{name}"),
                            key => format!("chaos.{name}.{key}"),
                        };
                        out.insert((at, p.message().to_owned()));
                    }
                }
            }
        }
        plan
    }

    /// Installs what `plan_chaos` planned and removes the injections an
    /// earlier file put in force that `settings` no longer names.
    pub(crate) fn install_chaos(
        &self,
        settings: &Settings,
        plan: ChaosPlan,
        changed: &mut BTreeSet<String>,
    ) {
        for (name, _) in self.chaos.set_by_settings() {
            if !settings.chaos.contains_key(&*name) && self.chaos.remove(&name) {
                tracing::info!(target: "resilience", name = &*name, "chaos: injection `{name}` removed by the settings");
                changed.insert(format!("chaos.{name}"));
            }
        }
        for armed in plan.install {
            let name = armed.name.clone();
            tracing::info!(target: "resilience", name = &*name, "chaos: injection `{name}` put in force by the settings: {:?}", armed.spec);
            self.chaos.install(armed);
            changed.insert(format!("chaos.{name}"));
        }
    }
}

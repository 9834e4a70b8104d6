//! Every function shape the macros accept compiles, keeps its signature and
//! runs. `cargo clippy --all-targets -- -D warnings` runs over this file too,
//! so the expansions stay lint-clean in users' crates.
#![deny(warnings)]

use std::fmt::Display;
use std::sync::Arc;

use resilience::{circuit_breaker, resilient, retry, timeout};

#[derive(Debug, thiserror::Error)]
pub enum MyError {
    #[error("bad input")]
    Bad,
    #[error(transparent)]
    Resilience(#[from] resilience::Error),
}

type MyResult<T> = Result<T, MyError>;

#[circuit_breaker]
pub async fn public_free_fn(x: u32) -> Result<u32, MyError> {
    Ok(x + 1)
}

#[circuit_breaker(name = "shapes-fleet", failure_threshold = 50, fleet_threshold = 20)]
async fn fleet_counted() -> MyResult<()> {
    Ok(())
}

#[retry]
async fn private_free_fn() -> MyResult<()> {
    Ok(())
}

#[resilient(name = "shapes-anyhow", timeout = 5)]
async fn anyhow_alias(s: &str) -> anyhow::Result<usize> {
    Ok(s.len())
}

#[timeout("1s")]
async fn io_alias() -> std::io::Result<u8> {
    Ok(1)
}

#[retry(max_attempts = 2)]
async fn generic<T, U>(t: T, u: &U) -> Result<String, MyError>
where
    T: Display + Clone + Send,
    U: Display + ?Sized,
{
    Ok(format!("{t}{u}"))
}

#[circuit_breaker(name = "shapes-lifetimes")]
async fn lifetimes<'a, 'b: 'a>(a: &'a str, _b: &'b str) -> Result<&'a str, MyError> {
    Ok(a)
}

#[retry(max_attempts = 2)]
async fn impl_trait_arg(
    f: impl Fn(u32) -> u32 + Clone,
    items: impl IntoIterator<Item = u32> + Clone,
) -> Result<u32, MyError> {
    Ok(items.into_iter().map(f).sum())
}

#[retry(max_attempts = 2)]
async fn impl_trait_return(n: u32) -> Result<impl Display, MyError> {
    Ok(n)
}

#[retry(max_attempts = 2)]
async fn patterns((a, b): (u32, u32), [c, _]: [u32; 2], mut acc: Vec<u32>) -> Result<u32, MyError> {
    acc.push(a + b + c);
    Ok(acc.iter().sum())
}

#[resilience::retry(max_attempts = 2)]
#[resilience::circuit_breaker(name = "shapes-paths")]
async fn full_paths() -> Result<(), MyError> {
    Ok(())
}

#[retry]
#[allow(clippy::needless_return)]
async fn with_return_and_question_mark(x: Option<u32>) -> Result<u32, MyError> {
    let v = x.ok_or(MyError::Bad)?;
    return Ok(v);
}

#[retry]
async fn unit_ok() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Ok(())
}

pub struct Service {
    name: String,
    hits: u32,
}

impl Service {
    #[circuit_breaker(name = self.name.as_str())]
    pub async fn by_ref(&self) -> Result<&str, MyError> {
        Ok(&self.name)
    }

    #[resilient(name = self.name.clone(), max_attempts = 2, delay = "1ms")]
    async fn by_mut(&mut self) -> Result<u32, MyError> {
        self.hits += 1;
        Ok(self.hits)
    }

    #[retry(max_attempts = 2)]
    async fn by_arc(self: Arc<Self>) -> Result<usize, MyError> {
        Ok(self.name.len() + Arc::strong_count(&self))
    }

    #[circuit_breaker(name = "shapes-by-value")]
    async fn by_value(self) -> Result<String, MyError> {
        Ok(self.name)
    }

    #[retry]
    async fn returns_self(name: &str) -> Result<Self, MyError> {
        Ok(Service {
            name: name.to_owned(),
            hits: 0,
        })
    }
}

pub trait Store {
    fn get(&self, key: &str) -> impl std::future::Future<Output = Result<String, MyError>> + Send;
    #[allow(async_fn_in_trait)]
    async fn provided(&self) -> Result<u32, MyError>;
}

struct Memory;

impl Store for Memory {
    #[resilient(name = "shapes-trait", max_attempts = 2)]
    async fn get(&self, key: &str) -> Result<String, MyError> {
        Ok(key.to_uppercase())
    }

    #[retry]
    async fn provided(&self) -> Result<u32, MyError> {
        Ok(42)
    }
}

trait WithDefault {
    #[allow(async_fn_in_trait)]
    #[retry(max_attempts = 2)]
    async fn defaulted(&self) -> Result<u8, MyError> {
        Ok(8)
    }
}

impl WithDefault for Memory {}

/// Unnamed breakers on methods: named after `Self` (read in the body, as a
/// `static` cannot name it), in generic impls, trait impls and defaults.
pub struct View<'a, T> {
    item: &'a T,
}

impl<'a, T> View<'a, T>
where
    T: Display + Sync,
{
    #[circuit_breaker(failure_threshold = 2)]
    pub async fn show(&self) -> Result<String, MyError> {
        Ok(self.item.to_string())
    }

    #[resilient(max_attempts = 2, delay = "1ms", timeout = 1)]
    async fn show_twice(&mut self, times: usize) -> Result<String, MyError> {
        Ok(self.item.to_string().repeat(times))
    }
}

trait Pinged {
    #[allow(async_fn_in_trait)]
    #[circuit_breaker]
    async fn ping(&self) -> Result<u8, MyError> {
        Ok(1)
    }
}

impl Pinged for Memory {}

fn opened(t: &resilience::Transition) {
    drop(t.name.clone());
}

#[circuit_breaker(name = "shapes-callbacks", on_open = opened, on_close = |t| drop(t.clone()))]
async fn with_callbacks() -> MyResult<()> {
    Ok(())
}

fn assert_send<T: Send>(t: T) -> T {
    t
}

#[tokio::test(start_paused = true)]
async fn every_shape_runs() {
    assert_eq!(assert_send(public_free_fn(1)).await.unwrap(), 2);
    private_free_fn().await.unwrap();
    fleet_counted().await.unwrap();
    let config = *resilience::registry().get("shapes-fleet").unwrap().config();
    assert_eq!(config.fleet_threshold().map(|n| n.get()), Some(20));
    assert_eq!(assert_send(anyhow_alias("abc")).await.unwrap(), 3);
    assert_eq!(io_alias().await.unwrap(), 1);
    assert_eq!(generic(1, "x").await.unwrap(), "1x");
    assert_eq!(lifetimes("a", "b").await.unwrap(), "a");
    assert_eq!(impl_trait_arg(|x| x * 2, vec![1, 2]).await.unwrap(), 6);
    assert_eq!(impl_trait_return(5).await.unwrap().to_string(), "5");
    assert_eq!(patterns((1, 2), [3, 4], vec![10]).await.unwrap(), 16);
    full_paths().await.unwrap();
    assert_eq!(with_return_and_question_mark(Some(3)).await.unwrap(), 3);
    assert!(matches!(
        with_return_and_question_mark(None).await,
        Err(MyError::Bad)
    ));
    unit_ok().await.unwrap();

    let mut s = Service {
        name: "shapes-dyn".into(),
        hits: 0,
    };
    assert_eq!(assert_send(s.by_ref()).await.unwrap(), "shapes-dyn");
    assert_eq!(s.by_mut().await.unwrap(), 1);
    assert_eq!(s.by_mut().await.unwrap(), 2);
    let arc = Arc::new(Service::returns_self("abc").await.unwrap());
    assert_eq!(arc.by_arc().await.unwrap(), 4);
    assert_eq!(s.by_value().await.unwrap(), "shapes-dyn");

    assert_eq!(assert_send(Memory.get("k")).await.unwrap(), "K");
    assert_eq!(Memory.provided().await.unwrap(), 42);
    assert_eq!(Memory.defaulted().await.unwrap(), 8);

    let item = 7u8;
    let mut view = View { item: &item };
    assert_eq!(assert_send(view.show()).await.unwrap(), "7");
    assert_eq!(view.show_twice(2).await.unwrap(), "77");
    assert_eq!(Memory.ping().await.unwrap(), 1);
    with_callbacks().await.unwrap();
    let registry = resilience::registry();
    assert!(registry.get("shapes::View::show").is_some());
    assert!(registry.get("shapes::View::show_twice").is_some());
    assert!(registry.get("shapes::Memory::ping").is_some());
}

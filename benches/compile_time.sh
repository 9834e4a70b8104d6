#!/usr/bin/env bash
# What the attributes cost a build: a generated crate with N async fns,
# built (debug, and `cargo check`) plain, with each attribute on every fn,
# and with `#[tracing::instrument]` as the reference. The dependencies are
# built once first; each variant then rebuilds only the generated crate, 3
# times, and the median is reported, with the cost per annotated fn over
# the plain crate and the size of the expanded code.
#
#   bash benches/compile_time.sh [N]        # default N = 200
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
n=${1:-200}
dir=${CARGO_TARGET_DIR:-$root/target}/compile-bench
mkdir -p "$dir/src"
cat > "$dir/Cargo.toml" <<TOML
[package]
name = "compile-bench"
version = "0.0.0"
edition = "2021"
publish = false

[lib]
path = "src/lib.rs"

[dependencies]
resilience = { path = "$root/resilience" }
tokio = { version = "1", features = ["time"] }
tracing = "0.1"
thiserror = "2"

[workspace]
TOML

gen() { # variant -> src/lib.rs
    {
        echo '#![allow(dead_code)]'
        echo '#[derive(Debug, thiserror::Error)] pub enum ApiError {'
        echo '    #[error("upstream")] Upstream,'
        echo '    #[error(transparent)] Resilience(#[from] resilience::Error),'
        echo '}'
        for i in $(seq 1 "$n"); do
            case "$1" in
                plain) ;;
                circuit_breaker) echo "#[resilience::circuit_breaker(name = \"b$i\", failure_threshold = 5, recovery_timeout = \"30s\")]" ;;
                retry) echo "#[resilience::retry(max_attempts = 3, backoff = \"exponential\", delay = \"100ms\")]" ;;
                resilient) echo "#[resilience::resilient(name = \"r$i\", failure_threshold = 5, max_attempts = 3, delay = \"100ms\", timeout = \"2s\")]" ;;
                instrument) echo "#[tracing::instrument]" ;;
            esac
            echo "pub async fn call_$i(id: u64) -> Result<u64, ApiError> { if id == 0 { Err(ApiError::Upstream) } else { Ok(id + $i) } }"
        done
    } > "$dir/src/lib.rs"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

seconds() { # command... -> seconds (3 runs, median)
    for _ in 1 2 3; do
        touch "$dir/src/lib.rs"
        local start end
        start=$(date +%s.%N)
        "$@" >/dev/null 2>&1
        end=$(date +%s.%N)
        awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }'
    done | median
}

gen plain
(cd "$dir" && cargo build -q && cargo check -q) >&2   # the dependencies, once

echo "| variant ($n fns) | build s | over plain, ms per fn | check s | over plain, ms per fn | expanded bytes per fn |"
echo "|---|---:|---:|---:|---:|---:|"
base_build=""; base_check=""; base_size=""
for v in plain circuit_breaker retry resilient instrument; do
    gen "$v"
    b=$(cd "$dir" && seconds cargo build)
    c=$(cd "$dir" && seconds cargo check)
    size=$(cd "$dir" && RUSTC_BOOTSTRAP=1 cargo rustc -q --lib -- -Zunpretty=expanded 2>/dev/null | wc -c)
    [ -z "$base_build" ] && { base_build=$b; base_check=$c; base_size=$size; }
    per_b=$(awk -v x="$b" -v y="$base_build" -v n="$n" 'BEGIN { print (x - y) * 1000 / n }')
    per_c=$(awk -v x="$c" -v y="$base_check" -v n="$n" 'BEGIN { print (x - y) * 1000 / n }')
    per_s=$(( (size - base_size) / n ))
    printf '| %s | %.2f | %.1f | %.2f | %.1f | %d |\n' "$v" "$b" "$per_b" "$c" "$per_c" "$per_s"
done

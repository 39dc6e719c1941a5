//! With the `torch` feature, lets the binary find libtorch at run time: an
//! rpath to `$LIBTORCH/lib` (set by `.cargo/config.toml` after
//! `scripts/setup-libtorch`), so nobody needs `LD_LIBRARY_PATH`.

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if std::env::var_os("CARGO_FEATURE_TORCH").is_some()
        && let Ok(dir) = std::env::var("LIBTORCH")
    {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}/lib");
    }
}

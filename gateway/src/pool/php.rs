//! A PHP function's `composer.json` dependencies: `composer install --no-dev` into a cache
//! directory named by the digest of `composer.json` (and `composer.lock`), once per content,
//! never writing into the watched functions tree. The worker is told the vendor directory
//! through `EDGEFN_PHP_VENDOR` and loads its `autoload.php` before the handler, so handler
//! classes autoload without a `require` of their own.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::deps::{self, cache_root, DepsEnv, DepsError};

/// The env var naming the installed vendor directory for the PHP worker.
pub const VENDOR_VAR: &str = "EDGEFN_PHP_VENDOR";

pub async fn composer(dir: &Path, composer: &[String]) -> Result<DepsEnv, DepsError> {
    let manifest = dir.join("composer.json");
    if !manifest.is_file() {
        return Ok(DepsEnv::default());
    }
    let lock = dir.join("composer.lock");
    let mut files: Vec<&Path> = vec![&manifest];
    if lock.is_file() {
        files.push(&lock);
    }
    let key = deps::digest_of(&files, composer)?;
    let target = cache_root().join("php").join(&key);
    let _one = deps::install_lock(&target).await;
    if !target.join(".complete").is_file() {
        let tmp = deps::fresh_tmp(&target)?;
        for f in &files {
            let to: PathBuf = tmp.join(f.file_name().expect("manifest has a name"));
            std::fs::copy(f, &to).map_err(|source| DepsError::Dir {
                dir: tmp.clone(),
                source,
            })?;
        }
        let mut cmd = Command::new(&composer[0]);
        cmd.args(&composer[1..])
            .args([
                "install",
                "--no-dev",
                "--no-interaction",
                "--no-progress",
                "--prefer-dist",
                "--no-scripts",
                "--quiet",
            ])
            .current_dir(&tmp)
            .env("COMPOSER_ALLOW_SUPERUSER", "1");
        deps::run(cmd, "composer install --no-dev").await?;
        deps::finish(&tmp, &target)?;
    }
    Ok(DepsEnv {
        vars: vec![(VENDOR_VAR, target.join("vendor"))],
    })
}

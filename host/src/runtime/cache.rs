//! Compiled components cached on disk, keyed by package digest and engine fingerprint, so a
//! restart (or a second instance of the same plugin) skips Cranelift.

use super::RuntimeError;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

pub fn prepare(dir: &Path) -> Result<(), RuntimeError> {
    std::fs::create_dir_all(dir).map_err(|source| RuntimeError::Cache {
        path: dir.into(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Only the hub may write here: cached code is loaded without re-validation.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|source| {
            RuntimeError::Cache {
                path: dir.into(),
                source,
            }
        })?;
    }
    Ok(())
}

fn entry_path(engine: &Engine, dir: &Path, digest: &str) -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let name = digest.trim_start_matches("sha256:");
    dir.join(format!("{name}-{:016x}.cwasm", hasher.finish()))
}

pub async fn load_or_compile(
    engine: &Engine,
    dir: &Path,
    digest: &str,
    component: &[u8],
) -> Result<Component, RuntimeError> {
    let path = entry_path(engine, dir, digest);
    if path.exists() {
        // SAFETY: the file was written by `Component::serialize` of an engine with the same
        // compatibility hash, into a directory only the hub can write (see `prepare`).
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(compiled) => return Ok(compiled),
            Err(error) => {
                tracing::warn!(path = %path.display(), error = %format!("{error:#}"), "discarding unusable compile cache entry");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let (engine, bytes) = (engine.clone(), component.to_vec());
    let compiled = tokio::task::spawn_blocking(move || Component::new(&engine, &bytes))
        .await
        .map_err(|e| RuntimeError::Load {
            digest: digest.into(),
            reason: e.to_string(),
        })?
        .map_err(|e| RuntimeError::Load {
            digest: digest.into(),
            reason: format!("{e:#}"),
        })?;
    match compiled.serialize() {
        Ok(serialized) => {
            // Write then rename, so a crash never leaves a torn entry behind.
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            let written = std::fs::write(&tmp, serialized).and_then(|()| std::fs::rename(&tmp, &path));
            if let Err(error) = written {
                tracing::warn!(path = %path.display(), %error, "could not write compile cache entry");
            }
        }
        Err(error) => tracing::warn!(error = %format!("{error:#}"), "could not serialize compiled plugin"),
    }
    Ok(compiled)
}

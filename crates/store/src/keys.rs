//! The log's Ed25519 key in the data directory: created at first start (mode 0600, created
//! exclusively so two processes starting together cannot both write one), in the signed-note
//! key format, with the public verifier key beside it for auditors.

use std::io::Write as _;
use std::path::Path;

use changegate_audit::{LogSigner, VerifierKey};
use rand::RngCore as _;

use crate::{KEY_FILE, PUBLIC_KEY_FILE, Result, StoreError};

fn io(context: String) -> impl FnOnce(std::io::Error) -> StoreError {
    move |source| StoreError::Io { context, source }
}

pub(crate) fn load_or_create(dir: &Path, create: bool) -> Result<(Option<LogSigner>, VerifierKey)> {
    let path = dir.join(KEY_FILE);
    if !path.exists() {
        if !create {
            return Ok((None, read_public(dir)?));
        }
        std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        let mut tag = [0u8; 6];
        rand::rng().fill_bytes(&mut tag);
        let signer = LogSigner::from_seed(
            &format!("changegate.invalid/audit/{}", hex::encode(tag)),
            seed,
        )?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        match opts.open(&path) {
            Ok(mut f) => {
                f.write_all(format!("{}\n", signer.to_note_key()).as_bytes())
                    .map_err(io(format!("write {}", path.display())))?;
                f.sync_all()
                    .map_err(io(format!("sync {}", path.display())))?;
                std::fs::write(
                    dir.join(PUBLIC_KEY_FILE),
                    format!("{}\n", signer.verifier()),
                )
                .map_err(io(format!("write {}", dir.join(PUBLIC_KEY_FILE).display())))?;
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(format!("create {}", path.display()))(e)),
        }
    }
    // Read back (also when another process won the race; give it a moment to finish writing).
    let mut text = String::new();
    for _ in 0..50 {
        text = std::fs::read_to_string(&path).map_err(io(format!("read {}", path.display())))?;
        if text.ends_with('\n') {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let signer = LogSigner::parse(&text)?;
    let verifier = signer.verifier();
    Ok((Some(signer), verifier))
}

pub(crate) fn read_public(dir: &Path) -> Result<VerifierKey> {
    let path = dir.join(PUBLIC_KEY_FILE);
    let text = std::fs::read_to_string(&path).map_err(io(format!("read {}", path.display())))?;
    Ok(VerifierKey::parse(&text)?)
}

//! Who may call: named tokens from `--admin-token`, `--admin-tokens-file` and
//! `--read-tokens-file`, read once at start and matched in constant time.
//!
//! A token file has one `name:token` per line; blank lines and lines that
//! start with `#` are skipped. The name is what the audit log calls the
//! holder; the token is at least [`MIN_TOKEN_BYTES`] bytes of printable
//! ASCII (it travels in an HTTP header). A file the server cannot use stops
//! the start with the flag and the line named, never the token.
//!
//! Matching compares SHA-256 digests, so every comparison is 32 bytes
//! whatever the lengths, and every configured token is compared, so the time
//! does not say which one (or whether one) matched.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::config::Config;

/// Shorter tokens stop the start: 32 random bytes cannot be guessed, and a
/// human-chosen password this long is at least not a short one.
pub const MIN_TOKEN_BYTES: usize = 32;

/// The name `--admin-token` goes by in the audit log.
pub const ADMIN_TOKEN_NAME: &str = "admin";

/// What a token lets its holder do. An admin token reads too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    Read,
    Admin,
}

/// A caller known by a token (or, for an application that authenticates
/// its own callers, by the name it gave).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub name: Arc<str>,
    pub grant: Grant,
}

struct Entry {
    holder: Holder,
    digest: [u8; 32],
}

/// Never shows a digest: names and grants only.
impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.holder.name)
            .field("grant", &self.holder.grant)
            .finish_non_exhaustive()
    }
}

/// The tokens the server accepts.
#[derive(Debug, Default)]
pub struct Access {
    entries: Vec<Entry>,
    /// `--read-tokens-file` is set: reads need a token too.
    reads_closed: bool,
}

/// Where a token came from, for messages: `--admin-token (…)` or a file's
/// flag and line.
#[derive(Debug, Clone)]
struct Origin {
    flag: &'static str,
    line: Option<usize>,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} line {line}", self.flag),
            None => write!(f, "{}", self.flag),
        }
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn check_token(token: &str, origin: &Origin) -> Result<(), String> {
    if token.len() < MIN_TOKEN_BYTES {
        return Err(format!(
            "{origin}: the token is {} bytes; at least {MIN_TOKEN_BYTES} are needed (`openssl rand -hex 32` makes one)",
            token.len()
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{origin}: the token must be printable ASCII without spaces (it is sent in an HTTP header)"
        ));
    }
    Ok(())
}

fn check_name(name: &str, origin: &Origin) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{origin}: the name before the ':' is empty"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-@+".contains(c);
    if name.len() > 64 || !name.chars().all(allowed) {
        return Err(format!(
            "{origin}: the name {name:?} must be at most 64 letters, digits and . _ - @ +"
        ));
    }
    Ok(())
}

impl Access {
    /// The tokens the configuration names, checked: a short or malformed
    /// token, an unreadable file, a duplicate name or token is an error that
    /// names the flag (and line), never the token.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let mut access = Self::default();
        let admin_token = config.admin_token.as_deref().map(str::trim);
        // An empty variable is no token, as if it were unset.
        if let Some(token) = admin_token.filter(|t| !t.is_empty()) {
            access.add(
                ADMIN_TOKEN_NAME,
                token,
                Grant::Admin,
                Origin {
                    flag: "--admin-token (PROVIDER_SYNC_ADMIN_TOKEN)",
                    line: None,
                },
            )?;
        }
        if let Some(path) = &config.admin_tokens_file {
            access.load(path, "--admin-tokens-file", Grant::Admin)?;
        }
        if let Some(path) = &config.read_tokens_file {
            access.load(path, "--read-tokens-file", Grant::Read)?;
            access.reads_closed = true;
        }
        Ok(access)
    }

    fn load(&mut self, path: &Path, flag: &'static str, grant: Grant) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("{flag} {}: cannot read it: {err}", path.display()))?;
        let before = self.entries.len();
        for (at, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let origin = Origin {
                flag,
                line: Some(at + 1),
            };
            let Some((name, token)) = line.split_once(':') else {
                return Err(format!("{origin}: expected name:token"));
            };
            self.add(name.trim(), token.trim(), grant, origin)?;
        }
        if self.entries.len() == before {
            return Err(format!(
                "{flag} {}: the file lists no name:token line",
                path.display()
            ));
        }
        Ok(())
    }

    fn add(&mut self, name: &str, token: &str, grant: Grant, origin: Origin) -> Result<(), String> {
        check_name(name, &origin)?;
        check_token(token, &origin)?;
        let digest = digest(token);
        if self
            .entries
            .iter()
            .any(|e| e.holder.grant == grant && *e.holder.name == *name)
        {
            return Err(format!("{origin}: the name {name:?} is given twice"));
        }
        if self.entries.iter().any(|e| e.digest == digest) {
            return Err(format!(
                "{origin}: this token is given twice (each holder needs a token of their own)"
            ));
        }
        self.entries.push(Entry {
            holder: Holder {
                name: Arc::from(name),
                grant,
            },
            digest,
        });
        Ok(())
    }

    /// Whether any admin token is configured (else the admin API is closed).
    pub fn admin_configured(&self) -> bool {
        self.entries.iter().any(|e| e.holder.grant == Grant::Admin)
    }

    /// Whether reads need a token (`--read-tokens-file` is set).
    pub fn reads_closed(&self) -> bool {
        self.reads_closed
    }

    /// The holder of `presented`, if it is a configured token. Constant time
    /// in the token's content and length: one digest, then every entry
    /// compared, without an early exit.
    pub fn identify(&self, presented: &str) -> Option<Holder> {
        let presented = digest(presented);
        // 0: none; else the matching entry's index + 1.
        let mut found = 0u32;
        for (at, entry) in self.entries.iter().enumerate() {
            let hit = entry.digest.ct_eq(&presented);
            found.conditional_assign(&(at as u32 + 1), hit);
        }
        let at = found.checked_sub(1)?;
        Some(self.entries[at as usize].holder.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const LONG_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn with_file(flag: &str, text: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, text).unwrap();
        let mut config = Config::defaults();
        match flag {
            "admin" => config.admin_tokens_file = Some(path),
            _ => config.read_tokens_file = Some(path),
        }
        (dir, config)
    }

    #[test]
    fn a_file_names_each_token_and_skips_comments_and_blank_lines() {
        let text = format!("# operators\n\nalice:{LONG_A}\n  bob : {LONG_B}  \r\n");
        let (_dir, config) = with_file("admin", &text);
        let access = Access::from_config(&config).unwrap();
        assert!(access.admin_configured());
        assert!(!access.reads_closed());
        assert_eq!(&*access.identify(LONG_A).unwrap().name, "alice");
        assert_eq!(&*access.identify(LONG_B).unwrap().name, "bob");
        assert_eq!(access.identify(&LONG_A[1..]), None);
        assert_eq!(access.identify(""), None);
    }

    #[test]
    fn a_token_may_contain_colons() {
        let token = format!("{LONG_A}:with:colons");
        let (_dir, config) = with_file("read", &format!("app:{token}\n"));
        let access = Access::from_config(&config).unwrap();
        assert!(access.reads_closed());
        let holder = access.identify(&token).unwrap();
        assert_eq!(holder.grant, Grant::Read);
    }

    #[test]
    fn what_stops_the_start_names_the_flag_and_line_not_the_token() {
        let short = "short-secret-token";
        for (text, expected) in [
            (format!("alice:{LONG_A}\n# c\nbob:{short}\n"), "line 3"),
            (format!("alice:{LONG_A}\nalice:{LONG_B}\n"), "given twice"),
            (format!("alice:{LONG_A}\nbob:{LONG_A}\n"), "given twice"),
            (format!(":{LONG_A}\n"), "empty"),
            (format!("{LONG_A}\n"), "name:token"),
            (format!("al ice:{LONG_A}\n"), "letters, digits"),
            (format!("alice:{LONG_A} {LONG_B}\n"), "printable ASCII"),
            ("# nothing here\n".to_owned(), "no name:token"),
        ] {
            let (_dir, config) = with_file("admin", &text);
            let err = Access::from_config(&config).unwrap_err();
            assert!(err.contains("--admin-tokens-file"), "{err}");
            assert!(err.contains(expected), "{expected}: {err}");
            assert!(!err.contains(short) && !err.contains(LONG_A), "{err}");
        }
    }

    #[test]
    fn the_command_line_token_is_named_admin_and_needs_32_bytes() {
        let mut config = Config::defaults();
        config.admin_token = Some("too-short".into());
        let err = Access::from_config(&config).unwrap_err();
        assert!(err.contains("--admin-token"), "{err}");
        assert!(!err.contains("too-short"), "{err}");

        config.admin_token = Some(LONG_A.into());
        let access = Access::from_config(&config).unwrap();
        assert_eq!(&*access.identify(LONG_A).unwrap().name, ADMIN_TOKEN_NAME);

        // An empty variable is as if none were set.
        config.admin_token = Some(String::new());
        assert!(!Access::from_config(&config).unwrap().admin_configured());
    }

    #[test]
    fn a_read_token_is_not_an_admin_token_and_no_token_is_both() {
        let (_dir, mut config) = with_file("read", &format!("app:{LONG_B}\n"));
        config.admin_token = Some(LONG_A.into());
        let access = Access::from_config(&config).unwrap();
        assert_eq!(access.identify(LONG_A).unwrap().grant, Grant::Admin);
        assert_eq!(access.identify(LONG_B).unwrap().grant, Grant::Read);

        config.admin_token = Some(LONG_B.into());
        let err = Access::from_config(&config).unwrap_err();
        assert!(err.contains("--read-tokens-file line 1"), "{err}");
    }
}

//! Asking for new secrets: a bundle's password (from a file, or typed twice without echo)
//! and a new passphrase for keys at rest (asked twice: a typo would lock the clerk out of
//! their own key). Never from an argument: arguments are visible to every user of the
//! machine.

use std::path::{Path, PathBuf};

use rustix::termios::{LocalModes, OptionalActions, isatty, tcgetattr, tcsetattr};
use zeroize::Zeroizing;

use super::{KeyError, SecretSource};

/// Why a password or passphrase could not be obtained.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PromptError {
    /// The password file could not be read.
    #[error("cannot read the password file {path}")]
    File {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Standard input is not a terminal and no file was named.
    #[error("no terminal to ask for the password: give --password-file FILE")]
    NoTerminal,
    /// The terminal's settings could not be read, changed or restored.
    #[error("{what}")]
    Terminal {
        /// What failed, in words.
        what: &'static str,
        /// The cause.
        #[source]
        source: rustix::io::Errno,
    },
    /// The typed line could not be read.
    #[error("cannot read the password")]
    Read(#[source] std::io::Error),
    /// The two entries differ.
    #[error("the two {what} differ; nothing was written")]
    Differ {
        /// "passwords" or "passphrases".
        what: &'static str,
    },
    /// The passphrase could not be read from its source.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Reads a password from the first line of `file`, or from the terminal without echo
/// (twice when `confirm`), prompting with `prompt`.
pub fn read_password(
    file: Option<&Path>,
    prompt: &str,
    confirm: bool,
) -> Result<String, PromptError> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file).map_err(|source| PromptError::File {
            path: file.display().to_string(),
            source,
        })?;
        return Ok(text.lines().next().unwrap_or("").to_owned());
    }
    let first = prompt_hidden(prompt)?;
    if confirm && prompt_hidden("again")? != first {
        return Err(PromptError::Differ { what: "passwords" });
    }
    Ok(first)
}

/// One line from the terminal with echo off; the terminal is restored whatever happens.
fn prompt_hidden(prompt: &str) -> Result<String, PromptError> {
    let terminal = |what| move |source| PromptError::Terminal { what, source };
    let stdin = std::io::stdin();
    if !isatty(&stdin) {
        return Err(PromptError::NoTerminal);
    }
    eprint!("{prompt}: ");
    let saved = tcgetattr(&stdin).map_err(terminal("cannot read the terminal's settings"))?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Now, &quiet).map_err(terminal("cannot turn echo off"))?;
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    let restored = tcsetattr(&stdin, OptionalActions::Now, &saved);
    eprintln!();
    read.map_err(PromptError::Read)?;
    restored.map_err(terminal("cannot restore the terminal"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// A new passphrase for keys at rest: from a file or an environment variable, or asked
/// twice on the terminal.
pub fn new_passphrase(
    file: Option<PathBuf>,
    env: Option<String>,
) -> Result<Zeroizing<String>, PromptError> {
    let source = SecretSource::from_settings(file, env);
    let first = source.read("new passphrase for the keys")?;
    if source == SecretSource::Terminal {
        let again = source.read("the same passphrase again")?;
        if *again != *first {
            return Err(PromptError::Differ {
                what: "passphrases",
            });
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly by design")]

    use super::*;

    #[test]
    fn a_password_file_gives_its_first_line_and_is_never_confirmed() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("password");
        std::fs::write(&file, "hoa sen nở\nsecond line\n").unwrap();
        assert_eq!(
            read_password(Some(&file), "password", true).unwrap(),
            "hoa sen nở"
        );
    }

    #[test]
    fn a_missing_password_file_is_named_with_its_cause() {
        let missing = std::path::Path::new("/nonexistent/password");
        let err = read_password(Some(missing), "password", false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read the password file /nonexistent/password"
        );
        assert!(
            std::error::Error::source(&err).is_some(),
            "the cause is kept"
        );
    }
}

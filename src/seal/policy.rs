//! Which classification levels the configured cipher may carry.
//!
//! The Party's rule on sending and receiving electronic documents (Quy định 337-QĐ/TW of
//! 27 June 2025, which replaced Quy định 217-QĐ/TW of 2020 for this purpose) and the Law
//! on Cipher (05/2011/QH13, art. 11) reserve state secrets for cipher products of the
//! Government Cipher Committee (Ban Cơ yếu Chính phủ): "Mật" documents must be encrypted
//! with such products, and "Tối mật" and "Tuyệt mật" documents travel only through the
//! cơ yếu channel. The bundled OpenPGP cipher is good cryptography but not a certified
//! product, so a server declares in its `[seal]` section which cipher it uses and whether
//! it is certified; the declaration travels in the signed directory, and the server and
//! every client apply [`SealPolicy::permits`] to it. This is the one home of that rule.

use serde::{Deserialize, Serialize};

use crate::document::manifest::Classification;

/// The name of the bundled OpenPGP cipher in configuration and in the directory.
pub const OPENPGP_CIPHER: &str = "openpgp";

/// A server's declaration of its cipher (`[seal]` in `congvan.toml`), as served in the
/// signed directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealPolicy {
    /// The cipher module that seals classified documents (`openpgp`, the bundled one, or
    /// the name of a certified module built into the binary).
    pub cipher: String,
    /// True only for a module certified by the Government Cipher Committee for state
    /// secrets. Never true for [`OPENPGP_CIPHER`]: congvan does not claim that.
    pub certified: bool,
    /// The certification the operator relies on (certificate number and issuer), shown to
    /// users; required when `certified` is true.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub certificate: String,
    /// Whether "Mật" documents may be sealed with an uncertified cipher. Off in production:
    /// only an operator who has decided that the bundled cipher is acceptable for "Mật"
    /// (for example in a trial) turns it on. Ignored when `certified` is true.
    #[serde(default)]
    pub allow_uncertified_mat: bool,
}

impl Default for SealPolicy {
    /// The safe default: the bundled cipher, uncertified, carrying no classified level.
    fn default() -> Self {
        SealPolicy {
            cipher: OPENPGP_CIPHER.to_owned(),
            certified: false,
            certificate: String::new(),
            allow_uncertified_mat: false,
        }
    }
}

/// Why a classification level may not be sent with the declared cipher.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealRefusal {
    /// "Tối mật" or "Tuyệt mật" with an uncertified cipher.
    #[error(
        "văn bản \"{label}\" chỉ được chuyển qua kênh cơ yếu (Quy định 337-QĐ/TW, Luật Cơ yếu \
         2011 điều 11); mật mã \"{cipher}\" của máy chủ không phải sản phẩm được Ban Cơ yếu \
         Chính phủ chứng nhận. Hãy gửi văn bản này qua kênh cơ yếu, hoặc đề nghị quản trị \
         cấu hình một mô-đun mật mã đã được chứng nhận / \"{label}\" documents travel only \
         through the cipher (cơ yếu) channel (Party rule 337-QĐ/TW, Law on Cipher 2011 art. \
         11), and this server's cipher \"{cipher}\" is not certified by the Government Cipher \
         Committee: send it through the cơ yếu channel, or ask the operator to configure a \
         certified cipher module"
    )]
    ChannelOnly {
        /// The level's Vietnamese label.
        label: &'static str,
        /// The declared cipher.
        cipher: String,
    },
    /// "Mật" with an uncertified cipher the operator has not allowed for it.
    #[error(
        "văn bản \"Mật\" phải được mã hóa bằng sản phẩm mật mã của Ban Cơ yếu Chính phủ \
         (Quy định 337-QĐ/TW, Luật Cơ yếu 2011 điều 11); mật mã \"{cipher}\" của máy chủ chưa \
         được chứng nhận và quản trị chưa cho phép dùng nó cho văn bản Mật. Hãy gửi qua kênh \
         cơ yếu, hoặc đề nghị quản trị cấu hình một mô-đun mật mã đã được chứng nhận / \"Mật\" \
         documents must be encrypted with a Government Cipher Committee product (Party rule \
         337-QĐ/TW, Law on Cipher 2011 art. 11); this server's cipher \"{cipher}\" is not \
         certified and the operator has not allowed it for \"Mật\": send it through the cơ \
         yếu channel, or ask the operator to configure a certified cipher module"
    )]
    MatNotAllowed {
        /// The declared cipher.
        cipher: String,
    },
}

/// Why a `[seal]` declaration is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The bundled OpenPGP cipher declared certified.
    #[error(
        "[seal] declares the bundled \"openpgp\" cipher certified: it is not a product certified \
         by the Government Cipher Committee, and congvan never declares it so (set certified = \
         false, or name a certified cipher module)"
    )]
    OpenPgpCertified,
    /// A certified cipher without the certification it relies on.
    #[error("[seal] declares \"{0}\" certified but names no certificate (set certificate = \"…\")")]
    NoCertificate(String),
    /// An empty cipher name.
    #[error("[seal] names no cipher")]
    NoCipher,
}

impl SealPolicy {
    /// Checks the declaration itself: the bundled cipher is never declared certified, and
    /// a certified one names its certification.
    pub fn check(&self) -> Result<(), PolicyError> {
        if self.cipher.trim().is_empty() {
            return Err(PolicyError::NoCipher);
        }
        if self.certified && self.cipher == OPENPGP_CIPHER {
            return Err(PolicyError::OpenPgpCertified);
        }
        if self.certified && self.certificate.trim().is_empty() {
            return Err(PolicyError::NoCertificate(self.cipher.clone()));
        }
        Ok(())
    }

    /// Whether a document of `level` may be sealed with the declared cipher and sent.
    /// Unclassified documents are never sealed and always permitted.
    pub fn permits(&self, level: Classification) -> Result<(), SealRefusal> {
        match level {
            Classification::Thuong => Ok(()),
            _ if self.certified => Ok(()),
            Classification::Mat if self.allow_uncertified_mat => Ok(()),
            Classification::Mat => Err(SealRefusal::MatNotAllowed {
                cipher: self.cipher.clone(),
            }),
            Classification::ToiMat | Classification::TuyetMat => Err(SealRefusal::ChannelOnly {
                label: level.label(),
                cipher: self.cipher.clone(),
            }),
        }
    }

    /// How a document of `level` sealed under this declaration is marked wherever it is
    /// shown, or `None` for unclassified documents.
    pub fn mark(&self, level: Classification) -> Option<SealMark> {
        level.is_classified().then(|| SealMark {
            cipher: self.cipher.clone(),
            certified: self.certified,
        })
    }
}

/// Which cipher sealed a classified document, recorded when the server accepted it and
/// shown with the document (an uncertified cipher is marked as such everywhere).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealMark {
    /// The cipher module's name.
    pub cipher: String,
    /// Whether the server declared it certified for state secrets when it accepted the
    /// document.
    pub certified: bool,
}

impl SealMark {
    /// A short bilingual note for listings and reports: empty for a certified cipher.
    pub fn note(&self) -> String {
        if self.certified {
            String::new()
        } else {
            format!(
                "mã hóa bằng mật mã chưa được chứng nhận ({}) / sealed with an uncertified cipher",
                self.cipher
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_cipher_carries_only_what_the_operator_allowed() {
        let production = SealPolicy::default();
        assert!(production.permits(Classification::Thuong).is_ok());
        assert!(matches!(
            production.permits(Classification::Mat),
            Err(SealRefusal::MatNotAllowed { .. })
        ));
        for level in [Classification::ToiMat, Classification::TuyetMat] {
            assert!(matches!(
                production.permits(level),
                Err(SealRefusal::ChannelOnly { .. })
            ));
        }
        let trial = SealPolicy {
            allow_uncertified_mat: true,
            ..SealPolicy::default()
        };
        assert!(trial.permits(Classification::Mat).is_ok());
        assert!(trial.permits(Classification::ToiMat).is_err());
        assert!(trial.permits(Classification::TuyetMat).is_err());
    }

    #[test]
    fn a_certified_module_carries_every_level() {
        let certified = SealPolicy {
            cipher: "module-x".into(),
            certified: true,
            certificate: "GCN 01/2026".into(),
            allow_uncertified_mat: false,
        };
        certified.check().unwrap();
        for level in [
            Classification::Mat,
            Classification::ToiMat,
            Classification::TuyetMat,
        ] {
            certified.permits(level).unwrap();
        }
        assert!(
            certified
                .mark(Classification::Mat)
                .unwrap()
                .note()
                .is_empty()
        );
    }

    #[test]
    fn the_bundled_cipher_is_never_declared_certified() {
        let claim = SealPolicy {
            certified: true,
            certificate: "anything".into(),
            ..SealPolicy::default()
        };
        assert_eq!(claim.check(), Err(PolicyError::OpenPgpCertified));
        let nameless = SealPolicy {
            cipher: "module-x".into(),
            certified: true,
            ..SealPolicy::default()
        };
        assert!(matches!(
            nameless.check(),
            Err(PolicyError::NoCertificate(_))
        ));
    }

    #[test]
    fn refusals_name_the_rule_and_what_to_do_in_both_languages() {
        let text = SealPolicy::default()
            .permits(Classification::TuyetMat)
            .unwrap_err()
            .to_string();
        for needle in ["Tuyệt mật", "337-QĐ/TW", "kênh cơ yếu", "cơ yếu) channel"] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }
}

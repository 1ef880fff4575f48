//! The desk's message catalogue: Vietnamese by default, English by a switch, every string
//! the desk shows in `src/desk/i18n/*.ftl` (Fluent), compiled into the binary.

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

/// The Vietnamese catalogue.
const VI: &str = include_str!("i18n/vi.ftl");
/// The English catalogue.
const EN: &str = include_str!("i18n/en.ftl");

/// A language the desk speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// Vietnamese, the default.
    Vi,
    /// English.
    En,
}

impl Lang {
    /// The language a cookie value names; anything else is Vietnamese.
    pub fn from_cookie(value: Option<&str>) -> Lang {
        match value {
            Some("en") => Lang::En,
            _ => Lang::Vi,
        }
    }

    /// The BCP 47 tag for `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }

    /// The other language (what the switch offers).
    pub fn other(self) -> Lang {
        match self {
            Lang::Vi => Lang::En,
            Lang::En => Lang::Vi,
        }
    }
}

/// Errors loading the catalogue (only a broken catalogue in the source tree causes them;
/// a unit test keeps both files loadable).
#[derive(Debug, thiserror::Error)]
#[error("message catalogue {lang}: {detail}")]
pub struct CatalogueError {
    lang: &'static str,
    detail: String,
}

/// Both catalogues, parsed once at start.
pub struct Catalogue {
    vi: FluentBundle<FluentResource>,
    en: FluentBundle<FluentResource>,
}

fn bundle(lang: &'static str, text: &str) -> Result<FluentBundle<FluentResource>, CatalogueError> {
    let error = |detail: String| CatalogueError { lang, detail };
    let resource = FluentResource::try_new(text.to_owned())
        .map_err(|(_, errors)| error(format!("{errors:?}")))?;
    let id = lang
        .parse()
        .map_err(|e: unic_langid::LanguageIdentifierError| error(e.to_string()))?;
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // Unicode isolation marks around arguments would end up inside attribute values and
    // test assertions; every argument here is an id, a number or a name.
    bundle.set_use_isolating(false);
    bundle
        .add_resource(resource)
        .map_err(|errors| error(format!("{errors:?}")))?;
    Ok(bundle)
}

impl Catalogue {
    /// Parses both catalogues.
    pub fn load() -> Result<Catalogue, CatalogueError> {
        Ok(Catalogue {
            vi: bundle("vi", VI)?,
            en: bundle("en", EN)?,
        })
    }

    /// The message `key` in `lang` with `args`; the key itself when it is missing, so a
    /// gap shows on screen instead of failing the page (a unit test finds gaps first).
    pub fn message(&self, lang: Lang, key: &str, args: &[(&str, &str)]) -> String {
        let bundle = match lang {
            Lang::Vi => &self.vi,
            Lang::En => &self.en,
        };
        let Some(pattern) = bundle.get_message(key).and_then(|m| m.value()) else {
            return key.to_owned();
        };
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            fluent_args.set(*name, FluentValue::from(*value));
        }
        let mut errors = Vec::new();
        bundle
            .format_pattern(pattern, Some(&fluent_args), &mut errors)
            .into_owned()
    }

    /// Whether `key` exists in both languages.
    pub fn has(&self, key: &str) -> bool {
        self.vi.has_message(key) && self.en.has_message(key)
    }
}

/// The catalogue bound to one request's language, handed to templates.
#[derive(Clone, Copy)]
pub struct Tr<'a> {
    catalogue: &'a Catalogue,
    /// The language.
    pub lang: Lang,
}

impl<'a> Tr<'a> {
    /// Binds `catalogue` to `lang`.
    pub fn new(catalogue: &'a Catalogue, lang: Lang) -> Tr<'a> {
        Tr { catalogue, lang }
    }

    /// The message `key`.
    pub fn get(&self, key: &str) -> String {
        self.catalogue.message(self.lang, key, &[])
    }

    /// The message `key` with one argument.
    pub fn arg(&self, key: &str, name: &str, value: &str) -> String {
        self.catalogue.message(self.lang, key, &[(name, value)])
    }

    /// The message `key` with several arguments.
    pub fn args(&self, key: &str, args: &[(&str, &str)]) -> String {
        self.catalogue.message(self.lang, key, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with(' ') && l.contains(" = "))
            .filter_map(|l| l.split(" = ").next())
            .filter(|k| !k.starts_with('-'))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn both_catalogues_load_and_have_the_same_keys() {
        let catalogue = Catalogue::load().unwrap();
        let vi = keys(VI);
        let en = keys(EN);
        assert_eq!(
            vi, en,
            "vi.ftl and en.ftl must list the same keys in the same order"
        );
        for key in &vi {
            assert!(catalogue.has(key), "{key} does not parse in both languages");
        }
    }

    #[test]
    fn every_key_the_templates_and_code_use_is_in_the_catalogue() {
        let catalogue = Catalogue::load().unwrap();
        let sources = [
            include_str!("templates/base.html"),
            include_str!("templates/inbox.html"),
            include_str!("templates/document.html"),
            include_str!("templates/compose.html"),
            include_str!("templates/sent.html"),
            include_str!("templates/outgoing.html"),
            include_str!("templates/audit.html"),
            include_str!("templates/error.html"),
            include_str!("pages/mod.rs"),
            include_str!("pages/inbox.rs"),
            include_str!("pages/document.rs"),
            include_str!("pages/compose.rs"),
            include_str!("pages/outgoing.rs"),
            include_str!("pages/audit.rs"),
            include_str!("register.rs"),
        ];
        let mut missing = Vec::new();
        for source in sources {
            for call in ["t.get(\"", "t.arg(\"", "t.args(\"", "key: \""] {
                for piece in source.split(call).skip(1) {
                    let key = piece.split('"').next().unwrap_or_default();
                    if !key.is_empty() && !catalogue.has(key) {
                        missing.push(key.to_owned());
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "missing from the catalogue: {missing:?}"
        );
    }

    #[test]
    fn english_is_a_switch_and_vietnamese_the_default() {
        let catalogue = Catalogue::load().unwrap();
        assert_eq!(Lang::from_cookie(None), Lang::Vi);
        assert_eq!(Lang::from_cookie(Some("xx")), Lang::Vi);
        assert_eq!(catalogue.message(Lang::Vi, "nav-inbox", &[]), "Văn bản đến");
        assert_eq!(catalogue.message(Lang::En, "nav-inbox", &[]), "Incoming");
        assert_eq!(
            catalogue.message(Lang::Vi, "incoming-number", &[("number", "1")]),
            "Số đến: 1"
        );
    }
}

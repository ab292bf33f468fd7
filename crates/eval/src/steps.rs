//! The step library: regex step definitions, cucumber style, matched against step text at load
//! time, with the nearest known step suggested for an unknown one.

use crate::world::World;
use crate::{CheckKind, Error, FailureCategory};
use async_trait::async_trait;
use regex::Regex;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};

/// Why a step failed: a category agents may see, and a message they may not (it can carry
/// scenario values).
#[derive(Debug, Clone, PartialEq)]
pub struct StepFailure {
    /// The kind of failure; safe to show under the default redaction.
    pub category: FailureCategory,
    /// The detail, for humans; redacted from agent feedback by default.
    pub message: String,
}

impl StepFailure {
    /// A failure of `category` with `message`.
    pub fn new(category: FailureCategory, message: impl Into<String>) -> Self {
        StepFailure {
            category,
            message: message.into(),
        }
    }
}

/// The arguments a step's regex captured, with captured variables already substituted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepArgs {
    names: Vec<Option<String>>,
    values: Vec<Option<String>>,
}

impl StepArgs {
    /// The value of the named group `name`, when it matched.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.names
            .iter()
            .position(|n| n.as_deref() == Some(name))
            .and_then(|i| self.values[i].as_deref())
    }

    /// The value of group `index` (1-based as in regex; 0 is the whole text).
    pub fn index(&self, index: usize) -> Option<&str> {
        self.values.get(index).and_then(Option::as_deref)
    }

    /// The named group `name` or the empty string.
    pub fn str(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// The named group `name` parsed as a number.
    ///
    /// # Errors
    /// A [`FailureCategory::StepError`] failure when it is absent or not a number.
    pub fn num<T: std::str::FromStr>(&self, name: &str) -> Result<T, StepFailure> {
        self.str(name).trim().parse().map_err(|_| {
            StepFailure::new(
                FailureCategory::StepError,
                format!("argument `{name}` is not a number: {:?}", self.str(name)),
            )
        })
    }

    fn map(&self, f: impl Fn(&str) -> String) -> StepArgs {
        StepArgs {
            names: self.names.clone(),
            values: self.values.iter().map(|v| v.as_deref().map(&f)).collect(),
        }
    }
}

/// A step implementation.
///
/// `run` returns the step's value (used by a trailing `as {name}`), or a failure. It may be
/// cancelled at any await point when the trial times out, so it must hold resources in guards
/// that clean up on drop.
#[async_trait]
pub trait StepHandler: Send + Sync {
    /// Runs the step against the trial's world.
    ///
    /// # Errors
    /// A [`StepFailure`] when the expectation does not hold or the action cannot be performed.
    async fn run(&self, world: &mut World, args: &StepArgs) -> Result<Option<String>, StepFailure>;

    /// Checks the arguments at load time (before any variable is known); the message becomes
    /// a load diagnostic. The default accepts everything.
    ///
    /// # Errors
    /// A message saying what is wrong with the arguments.
    fn validate(&self, _args: &StepArgs) -> Result<(), String> {
        Ok(())
    }
}

// `&T`, `Box<T>` and `Arc<T>` of an implementation forward to it (the blanket impls, written once).
macro_rules! forward_step_handler {
    ($($t:ty),*) => {$(
        #[async_trait]
        impl<T: StepHandler + ?Sized> StepHandler for $t {
            async fn run(&self, world: &mut World, args: &StepArgs) -> Result<Option<String>, StepFailure> {
                (**self).run(world, args).await
            }
            fn validate(&self, args: &StepArgs) -> Result<(), String> {
                (**self).validate(args)
            }
        }
    )*};
}
forward_step_handler!(&T, Box<T>, Arc<T>);

/// A future returned by an async step function.
pub type StepFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<String>, StepFailure>> + Send + 'a>>;

/// Adapts a function `fn(&mut World, StepArgs) -> StepFuture` into a [`StepHandler`].
pub struct AsyncFnStep<F>(pub F);

#[async_trait]
impl<F> StepHandler for AsyncFnStep<F>
where
    F: for<'a> Fn(&'a mut World, StepArgs) -> StepFuture<'a> + Send + Sync,
{
    async fn run(&self, world: &mut World, args: &StepArgs) -> Result<Option<String>, StepFailure> {
        (self.0)(world, args.clone()).await
    }
}

/// Adapts a synchronous closure into a [`StepHandler`].
pub struct FnStep<F>(pub F);

#[async_trait]
impl<F> StepHandler for FnStep<F>
where
    F: Fn(&mut World, &StepArgs) -> Result<Option<String>, StepFailure> + Send + Sync,
{
    async fn run(&self, world: &mut World, args: &StepArgs) -> Result<Option<String>, StepFailure> {
        (self.0)(world, args)
    }
}

/// One registered step definition.
#[derive(Clone)]
pub struct StepDef {
    pattern: Regex,
    example: String,
    produces_value: bool,
    kind: CheckKind,
    handler: Arc<dyn StepHandler>,
}

impl std::fmt::Debug for StepDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepDef")
            .field("pattern", &self.pattern.as_str())
            .field("example", &self.example)
            .finish_non_exhaustive()
    }
}

impl StepDef {
    /// The anchored regex.
    pub fn pattern(&self) -> &str {
        self.pattern.as_str()
    }

    /// An example of matching text, used for suggestions and docs.
    pub fn example(&self) -> &str {
        &self.example
    }

    /// The check kind a scenario using this step has (load, adversarial or behavioural).
    pub fn kind(&self) -> CheckKind {
        self.kind
    }
}

/// A step text matched to a definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// Index of the definition in its [`StepLibrary`].
    pub def: usize,
    /// Captured arguments, before variable substitution.
    pub args: StepArgs,
    /// The variable named by a trailing `as {name}`.
    pub save_as: Option<String>,
}

/// Why a step text did not resolve.
#[derive(Debug, Clone, PartialEq)]
pub enum ResolveError {
    /// No definition matches; `suggestion` is the example of the nearest one.
    Unknown {
        /// The nearest known step's example, when any is close enough.
        suggestion: Option<String>,
    },
    /// A definition matches but rejects the arguments.
    Invalid(String),
    /// `as {name}` on a step that yields no value.
    NoValue,
}

static SAVE_AS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?s)(?P<text>.*?)\s+as\s+\{(?P<var>[A-Za-z_][A-Za-z0-9_.-]*)\}\s*$")
        .unwrap_or_else(|e| unreachable!("static regex: {e}"))
});

/// An ordered set of step definitions; the first match wins.
#[derive(Debug, Clone, Default)]
pub struct StepLibrary {
    defs: Vec<StepDef>,
}

impl StepLibrary {
    /// A library with no steps.
    pub fn empty() -> Self {
        StepLibrary::default()
    }

    /// The built-in steps (see [`crate::builtin`] for the list).
    pub fn builtin() -> Self {
        let mut lib = StepLibrary::empty();
        crate::builtin::register_all(&mut lib);
        lib
    }

    /// The definitions, in match order.
    pub fn defs(&self) -> &[StepDef] {
        &self.defs
    }

    /// Registers a step. `pattern` is a regex matched against the whole step text (it is
    /// anchored for you; a leading `^`/trailing `$` is fine). Named groups become
    /// [`StepArgs`]. `example` is a matching text, shown when suggesting the nearest step.
    ///
    /// Steps registered later are tried after the built-ins; put a custom step first with
    /// [`StepLibrary::register_first`].
    ///
    /// # Errors
    /// [`Error::Step`] when the regex does not compile or `example` does not match it.
    pub fn register(
        &mut self,
        pattern: &str,
        example: &str,
        handler: impl StepHandler + 'static,
    ) -> Result<&mut Self, Error> {
        let def = Self::make(
            pattern,
            example,
            false,
            CheckKind::Behavioural,
            Arc::new(handler),
        )?;
        self.defs.push(def);
        Ok(self)
    }

    /// Like [`StepLibrary::register`], but tried before every existing definition.
    ///
    /// # Errors
    /// As [`StepLibrary::register`].
    pub fn register_first(
        &mut self,
        pattern: &str,
        example: &str,
        handler: impl StepHandler + 'static,
    ) -> Result<&mut Self, Error> {
        let def = Self::make(
            pattern,
            example,
            false,
            CheckKind::Behavioural,
            Arc::new(handler),
        )?;
        self.defs.insert(0, def);
        Ok(self)
    }

    /// Registers a step whose value may be saved with `as {name}`.
    ///
    /// # Errors
    /// As [`StepLibrary::register`].
    pub fn register_with_value(
        &mut self,
        pattern: &str,
        example: &str,
        handler: impl StepHandler + 'static,
    ) -> Result<&mut Self, Error> {
        let def = Self::make(
            pattern,
            example,
            true,
            CheckKind::Behavioural,
            Arc::new(handler),
        )?;
        self.defs.push(def);
        Ok(self)
    }

    /// Registers a synchronous closure as a step; see [`StepLibrary::register`].
    ///
    /// # Errors
    /// As [`StepLibrary::register`].
    pub fn register_fn<F>(&mut self, pattern: &str, example: &str, f: F) -> Result<&mut Self, Error>
    where
        F: Fn(&mut World, &StepArgs) -> Result<Option<String>, StepFailure> + Send + Sync + 'static,
    {
        let def = Self::make(
            pattern,
            example,
            true,
            CheckKind::Behavioural,
            Arc::new(FnStep(f)),
        )?;
        self.defs.push(def);
        Ok(self)
    }

    pub(crate) fn add_builtin(
        &mut self,
        pattern: &str,
        example: &str,
        produces_value: bool,
        kind: CheckKind,
        handler: Arc<dyn StepHandler>,
    ) {
        match Self::make(pattern, example, produces_value, kind, handler) {
            Ok(def) => self.defs.push(def),
            Err(e) => unreachable!("built-in step `{example}` is broken: {e}"),
        }
    }

    fn make(
        pattern: &str,
        example: &str,
        produces_value: bool,
        kind: CheckKind,
        handler: Arc<dyn StepHandler>,
    ) -> Result<StepDef, Error> {
        let core = pattern.trim_start_matches('^').trim_end_matches('$');
        let anchored = format!("^(?:{core})$");
        let regex = Regex::new(&anchored)
            .map_err(|e| Error::Step(format!("pattern `{pattern}` does not compile: {e}")))?;
        if !regex.is_match(example) {
            return Err(Error::Step(format!(
                "example `{example}` does not match pattern `{pattern}`"
            )));
        }
        Ok(StepDef {
            pattern: regex,
            example: example.to_owned(),
            produces_value,
            kind,
            handler,
        })
    }

    /// Matches `text` (without its Given/When/Then keyword) to a definition.
    ///
    /// A trailing `as {name}` is split off first and names the variable to save the step's
    /// value in.
    ///
    /// # Errors
    /// [`ResolveError`] when nothing matches, the arguments are invalid, or `as {name}` is used
    /// on a step that yields no value.
    pub fn resolve(&self, text: &str) -> Result<Binding, ResolveError> {
        let text = text.trim();
        if let Some(b) = self.resolve_exact(text, None)? {
            return Ok(b);
        }
        if let Some(c) = SAVE_AS.captures(text) {
            let var = c["var"].to_owned();
            if let Some(b) = self.resolve_exact(&c["text"], Some(var))? {
                if !self.defs[b.def].produces_value {
                    return Err(ResolveError::NoValue);
                }
                return Ok(b);
            }
        }
        Err(ResolveError::Unknown {
            suggestion: self.suggest(text),
        })
    }

    fn resolve_exact(
        &self,
        text: &str,
        save_as: Option<String>,
    ) -> Result<Option<Binding>, ResolveError> {
        for (i, def) in self.defs.iter().enumerate() {
            if let Some(c) = def.pattern.captures(text) {
                let args = StepArgs {
                    names: def
                        .pattern
                        .capture_names()
                        .map(|n| n.map(str::to_owned))
                        .collect(),
                    values: c.iter().map(|m| m.map(|m| m.as_str().to_owned())).collect(),
                };
                def.handler.validate(&args).map_err(ResolveError::Invalid)?;
                return Ok(Some(Binding {
                    def: i,
                    args,
                    save_as,
                }));
            }
        }
        Ok(None)
    }

    /// The example of the known step nearest to `text` (normalised Levenshtein over lower-case
    /// text, `strsim`), when it is at least 40% similar.
    pub fn suggest(&self, text: &str) -> Option<String> {
        let text = text.to_lowercase();
        self.defs
            .iter()
            .map(|d| {
                (
                    strsim::normalized_levenshtein(&text, &d.example.to_lowercase()),
                    &d.example,
                )
            })
            .filter(|(score, _)| *score >= 0.4)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, e)| e.clone())
    }

    /// The check kind of the definition at `def`.
    pub fn kind_of(&self, def: usize) -> CheckKind {
        self.defs
            .get(def)
            .map_or(CheckKind::Behavioural, |d| d.kind)
    }

    /// Runs a resolved step: substitutes variables into its arguments, runs it, and saves its
    /// value when the binding says `as {name}`.
    ///
    /// # Errors
    /// The handler's [`StepFailure`], or a step error when the binding does not belong to this
    /// library or a value to save is missing.
    pub async fn run(&self, binding: &Binding, world: &mut World) -> Result<(), StepFailure> {
        let Some(def) = self.defs.get(binding.def) else {
            return Err(StepFailure::new(
                FailureCategory::StepError,
                "the step binding does not belong to this step library",
            ));
        };
        let args = binding.args.map(|v| world.substitute(v));
        let value = def.handler.run(world, &args).await?;
        if let Some(var) = &binding.save_as {
            let Some(value) = value else {
                return Err(StepFailure::new(
                    FailureCategory::StepError,
                    format!("the step produced no value to save as {{{var}}}"),
                ));
            };
            world.vars.insert(var.clone(), value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_rejects_examples_that_do_not_match() {
        let mut lib = StepLibrary::empty();
        let err = lib
            .register_fn(
                r"the cache holds (?P<n>\d+) items",
                "cache has 3",
                |_, _| Ok(None),
            )
            .unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    #[test]
    fn resolve_splits_save_as_and_suggests_nearest() {
        let lib = StepLibrary::builtin();
        let b = lib
            .resolve("I save the JSON at `$.origin` as {origin}")
            .unwrap();
        assert_eq!(b.save_as.as_deref(), Some("origin"));
        assert_eq!(b.args.get("path"), Some("$.origin"));
        match lib.resolve("the statuss is 200") {
            Err(ResolveError::Unknown { suggestion }) => {
                assert_eq!(suggestion.as_deref(), Some("the status is 200"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            lib.resolve("the status is 200 as {x}"),
            Err(ResolveError::NoValue)
        );
    }
}

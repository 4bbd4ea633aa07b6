//! The skip-or-require harness of an integration-test tier.
//!
//! A test that returns early when its prerequisites are missing is counted as passed by the
//! standard harness, which hides a tier that never ran. So every tier is a `harness = false`
//! binary whose `main` calls [`Tier::run`]: a missing prerequisite makes each test *ignored*
//! with the reason printed, or *failed* when the tier is required.

pub use libtest_mimic::Conclusion;
use libtest_mimic::{Arguments, Completion, Failed, Trial};

/// One test of a tier: its name and body (a panic is its failure).
pub struct Test {
    pub name: &'static str,
    pub body: Box<dyn FnOnce() + Send>,
}

/// Lists sync test functions as [`Test`]s: `tests![a, b]`.
#[macro_export]
macro_rules! tests {
    ($($f:ident),* $(,)?) => {
        vec![$($crate::Test { name: stringify!($f), body: Box::new($f) }),*]
    };
}

/// Lists async test functions as [`Test`]s, each run on its own tokio runtime:
/// `async_tests![a, b]`.
#[macro_export]
macro_rules! async_tests {
    ($($f:ident),* $(,)?) => {
        vec![$($crate::Test {
            name: stringify!($f),
            body: Box::new(|| $crate::tier::block_on($f())),
        }),*]
    };
}

/// An integration-test tier: what it needs and the variable that makes it mandatory.
pub struct Tier {
    /// Shown in the skip and failure messages, e.g. "shim under containerd 2".
    pub name: &'static str,
    /// `WASMPOD_REQUIRE_<TIER>`: `1` turns a missing prerequisite into a failure.
    pub require_var: &'static str,
}

impl Tier {
    /// Whether this tier must run: its variable is `1`, or this is CI (`CI=true`).
    pub fn required(&self) -> bool {
        std::env::var(self.require_var).is_ok_and(|v| v == "1")
            || std::env::var("CI").is_ok_and(|v| v == "true")
    }

    /// Runs `tests` unless `missing` names a prerequisite that is not there, and exits with
    /// the harness's status. Call from `main`.
    pub fn run(&self, missing: Option<String>, tests: Vec<Test>) -> ! {
        self.conclude(missing, tests).exit()
    }

    /// [`Tier::run`] for a tier that has to clean up after its tests (a shared server): the
    /// caller exits with the returned conclusion.
    pub fn conclude(&self, missing: Option<String>, tests: Vec<Test>) -> Conclusion {
        let args = Arguments::from_args();
        let required = self.required();
        let verdict = missing.map(|reason| {
            if required {
                format!(
                    "{} must run ({}=1 or CI), but {reason}",
                    self.name, self.require_var
                )
            } else {
                format!(
                    "SKIPPED: {}: {reason} (set {}=1 to fail instead)",
                    self.name, self.require_var
                )
            }
        });
        if let Some(v) = &verdict {
            eprintln!("{v}");
        }
        let trials = tests
            .into_iter()
            .map(|t| {
                let verdict = verdict.clone();
                Trial::ignorable_test(t.name, move || match verdict {
                    Some(v) if required => Err(Failed::from(v)),
                    Some(v) => Ok(Completion::ignored_with(v)),
                    // libtest-mimic reports a panic as a failure with its message.
                    None => {
                        (t.body)();
                        Ok(Completion::Completed)
                    }
                })
            })
            .collect();
        libtest_mimic::run(&args, trials)
    }
}

/// Runs a future to completion on a fresh multi-threaded tokio runtime (what `#[tokio::test]`
/// gives each test).
pub fn block_on<F: std::future::Future<Output = ()>>(f: F) {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("cannot build a tokio runtime: {e}"))
        .block_on(f)
}

//! The outcome report's model and rendering, from `lightsout-report`: re-exported because
//! [`crate::outcome`] builds its [`RunReport`] and [`crate::Error::Report`] carries its
//! [`ReportError`].

pub use lightsout_report::*;

//! The canonical expression and transform language every dialect lowers its data handling
//! into (see `docs/expressions.md` for the user-facing reference).
//!
//! Module map:
//! * [`vars`]: the variables an expression reads ([`Var`], [`Vars`]);
//! * [`ast`]: the syntax tree ([`Node`]) and its canonical rendering;
//! * [`parse`]: tokenizer and parser, parameterised by a vendor [`Syntax`];
//! * [`expression`]: [`Expr`], a parsed expression with its canonical text (serde: a string);
//! * [`eval`]: evaluation semantics ([`EvalError`], [`is_truthy`], [`json_equal`]);
//! * [`functions`]: the built-in functions ([`Func`]);
//! * [`template`]: [`Template`], JSON with expressions inside (constructors, mappings).

pub mod ast;
pub mod eval;
pub mod expression;
pub mod functions;
pub mod parse;
pub mod template;
mod vars;

pub use ast::{BinaryOp, Node, RegexLit, Root, Segment, Selector, UnaryOp};
pub use eval::{is_truthy, json_equal, EvalError};
pub use expression::Expr;
pub use functions::Func;
pub use parse::{parse, ParseError, Syntax, CANONICAL};
pub use template::{Template, TemplateIssue};
pub use vars::{Var, Vars};

//! The expression syntax tree, and its canonical text rendering.
//!
//! Every vendor expression form lowers into [`Node`]. `Display` prints canonical text that
//! re-parses (with [`super::CANONICAL`]) to an equal tree, so canonical flows can always be
//! written back out.

use std::fmt::{self, Display, Formatter, Write};

use regex::Regex;
use serde_json::Value;

use super::functions::Func;
use super::vars::Var;

/// One node of an expression tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A constant. Array and object literals whose members are all constant fold into one.
    Literal(Value),
    /// A regular expression literal `/.../flags`, compiled once at parse time. As a value it
    /// reads as its pattern string; `=~` and `regexMatchString` use the compiled form.
    Regex(RegexLit),
    /// A JSONPath-style path from a variable or from `@` (the current filter node).
    Path {
        /// Where the path starts.
        root: Root,
        /// The steps applied in order.
        segments: Vec<Segment>,
    },
    /// A prefix operator.
    Unary(UnaryOp, Box<Node>),
    /// An infix operator (`a | b` is [`Node::Coalesce`], not a binary operator).
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Left operand.
        left: Box<Node>,
        /// Right operand.
        right: Box<Node>,
    },
    /// A built-in function call; name and arity are checked at parse time.
    Call(Func, Vec<Node>),
    /// `a | b`: `b` when `a` is null or an empty indefinite-path result (Huawei fallbacks).
    Coalesce(Box<Node>, Box<Node>),
    /// An array literal with at least one non-constant element.
    Array(Vec<Node>),
    /// An object literal with at least one non-constant value; keys keep their order.
    Object(Vec<(String, Node)>),
}

/// Where a path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Root {
    /// A variable such as `$input`.
    Var(Var),
    /// `@`: the node a JSONPath filter is testing (only valid inside `[?(...)]`).
    Current,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// `.name` or `["name"]`: an object member.
    Field(String),
    /// `[n]`: an array element; negative counts from the end (`[-1]` is the last).
    Index(i64),
    /// `.*` or `[*]`: every element of an array or every value of an object.
    Wildcard,
    /// `[start:end:step]` (Python slice semantics; each part optional, step non-zero).
    Slice(Option<i64>, Option<i64>, Option<i64>),
    /// `[0,2]` or `["a","b"]`: several elements or members (at least two).
    Union(Vec<Selector>),
    /// `[?(cond)]`: array elements (or the object itself) for which `cond` is truthy,
    /// with `@` bound to the candidate.
    Filter(Box<Node>),
    /// `..name` (every member called `name` at any depth) or `..*` (every descendant).
    Recursive(Option<String>),
}

/// One member of a [`Segment::Union`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    /// An array index (negative counts from the end).
    Index(i64),
    /// An object member name.
    Name(String),
}

/// Prefix operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `!x`: the negation of `x`'s truthiness.
    Not,
    /// `-x`: numeric negation.
    Neg,
}

/// Infix operators, listed by the canonical symbol they print as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `==`: deep JSON equality (`1 == 1.0`).
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `&&` (short-circuit, yields a boolean).
    And,
    /// `||` (short-circuit, yields a boolean).
    Or,
    /// `in`: element of an array, key of an object, substring of a string.
    In,
    /// `nin`: the negation of `in`.
    NotIn,
    /// `+`: numeric addition or string concatenation.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Mod,
    /// `=~`: regular-expression search on a string.
    RegexMatch,
}

impl BinaryOp {
    /// The canonical symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::And => "&&",
            BinaryOp::Or => "||",
            BinaryOp::In => "in",
            BinaryOp::NotIn => "nin",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::RegexMatch => "=~",
        }
    }

    /// Binding strength: higher binds tighter. `|` (coalesce) is [`COALESCE_PRECEDENCE`].
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 2,
            BinaryOp::And => 3,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::RegexMatch => 4,
            BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge
            | BinaryOp::In
            | BinaryOp::NotIn => 5,
            BinaryOp::Add | BinaryOp::Sub => 6,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => 7,
        }
    }
}

/// Precedence of the `|` fallback operator: the loosest of all.
pub const COALESCE_PRECEDENCE: u8 = 1;
/// Precedence of prefix operators.
pub(crate) const UNARY_PRECEDENCE: u8 = 8;
/// Precedence of primaries (literals, paths, calls, parentheses).
const PRIMARY_PRECEDENCE: u8 = 9;

/// A compiled regular-expression literal. Two literals are equal when pattern and flags are.
#[derive(Clone)]
pub struct RegexLit {
    pattern: String,
    flags: String,
    regex: Regex,
}

impl RegexLit {
    /// Compiles `pattern` (Rust `regex` syntax) with flags drawn from `i`, `m`, `s`, `x`.
    /// An escaped slash `\/` in the pattern is stored as a plain `/`.
    pub fn new(pattern: &str, flags: &str) -> Result<RegexLit, String> {
        if let Some(c) = flags.chars().find(|c| !"imsx".contains(*c)) {
            return Err(format!("unknown regex flag '{c}' (allowed: i, m, s, x)"));
        }
        let pattern = unescape_slashes(pattern);
        let full = if flags.is_empty() {
            pattern.clone()
        } else {
            format!("(?{flags}){pattern}")
        };
        let regex = regex::RegexBuilder::new(&full)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("invalid regular expression: {e}"))?;
        Ok(RegexLit {
            pattern,
            flags: flags.to_string(),
            regex,
        })
    }

    /// The pattern as compiled (without flags).
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The flags, e.g. `"i"`.
    pub fn flags(&self) -> &str {
        &self.flags
    }

    /// The compiled regex.
    pub fn regex(&self) -> &Regex {
        &self.regex
    }
}

/// Replaces `\/` escape pairs by `/`, leaving every other escape pair untouched.
fn unescape_slashes(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('/') => out.push('/'),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl PartialEq for RegexLit {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern && self.flags == other.flags
    }
}

impl fmt::Debug for RegexLit {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        Display::fmt(self, f)
    }
}

impl Display for RegexLit {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('/')?;
        let mut chars = self.pattern.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    f.write_char('\\')?;
                    if let Some(n) = chars.next() {
                        f.write_char(n)?;
                    }
                }
                '/' => f.write_str("\\/")?,
                c => f.write_char(c)?,
            }
        }
        write!(f, "/{}", self.flags)
    }
}

impl Segment {
    /// True for steps that select at most one value (`Field`, `Index`).
    pub fn is_definite(&self) -> bool {
        matches!(self, Segment::Field(_) | Segment::Index(_))
    }
}

impl Node {
    /// True when this is a path with at least one indefinite step (wildcard, slice, union,
    /// filter, recursive descent): such a path always evaluates to an array of matches.
    pub fn is_indefinite_path(&self) -> bool {
        match self {
            Node::Path { segments, .. } => !segments.iter().all(Segment::is_definite),
            _ => false,
        }
    }

    /// True when the tree reads `var` anywhere (including inside filters and calls).
    pub fn references(&self, var: Var) -> bool {
        match self {
            Node::Literal(_) | Node::Regex(_) => false,
            Node::Path { root, segments } => {
                *root == Root::Var(var)
                    || segments.iter().any(|s| match s {
                        Segment::Filter(n) => n.references(var),
                        _ => false,
                    })
            }
            Node::Unary(_, n) => n.references(var),
            Node::Binary { left, right, .. } | Node::Coalesce(left, right) => {
                left.references(var) || right.references(var)
            }
            Node::Call(_, args) | Node::Array(args) => args.iter().any(|a| a.references(var)),
            Node::Object(members) => members.iter().any(|(_, n)| n.references(var)),
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            Node::Coalesce(..) => COALESCE_PRECEDENCE,
            Node::Binary { op, .. } => op.precedence(),
            Node::Unary(..) => UNARY_PRECEDENCE,
            Node::Literal(Value::Number(n)) if n.as_f64().is_some_and(|f| f.is_sign_negative()) => {
                UNARY_PRECEDENCE
            }
            _ => PRIMARY_PRECEDENCE,
        }
    }

    fn fmt_operand(&self, f: &mut Formatter<'_>, parens: bool) -> fmt::Result {
        if parens {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

/// True when `name` can be written after a `.` in a path (letters, digits, `_`).
pub(crate) fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(is_name_char)
}

/// Characters allowed in a dotted path member or an identifier.
pub(crate) fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn write_json_string(f: &mut Formatter<'_>, s: &str) -> fmt::Result {
    // Serializing a &str cannot fail.
    f.write_str(&serde_json::to_string(s).unwrap_or_default())
}

impl Display for Segment {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Field(name) if is_plain_name(name) => write!(f, ".{name}"),
            Segment::Field(name) => {
                f.write_char('[')?;
                write_json_string(f, name)?;
                f.write_char(']')
            }
            Segment::Index(i) => write!(f, "[{i}]"),
            Segment::Wildcard => f.write_str("[*]"),
            Segment::Slice(a, b, c) => {
                f.write_char('[')?;
                if let Some(a) = a {
                    write!(f, "{a}")?;
                }
                f.write_char(':')?;
                if let Some(b) = b {
                    write!(f, "{b}")?;
                }
                if let Some(c) = c {
                    write!(f, ":{c}")?;
                }
                f.write_char(']')
            }
            Segment::Union(items) => {
                f.write_char('[')?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    match item {
                        Selector::Index(n) => write!(f, "{n}")?,
                        Selector::Name(s) => write_json_string(f, s)?,
                    }
                }
                f.write_char(']')
            }
            Segment::Filter(cond) => write!(f, "[?({cond})]"),
            Segment::Recursive(None) => f.write_str("..*"),
            Segment::Recursive(Some(name)) if is_plain_name(name) => write!(f, "..{name}"),
            Segment::Recursive(Some(name)) => {
                f.write_str("..[")?;
                write_json_string(f, name)?;
                f.write_char(']')
            }
        }
    }
}

impl Display for Node {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Node::Literal(v) => write!(f, "{v}"),
            Node::Regex(r) => write!(f, "{r}"),
            Node::Path { root, segments } => {
                match root {
                    Root::Var(v) => write!(f, "${}", v.canonical_name())?,
                    Root::Current => f.write_char('@')?,
                }
                for s in segments {
                    write!(f, "{s}")?;
                }
                Ok(())
            }
            Node::Unary(op, operand) => {
                f.write_str(match op {
                    UnaryOp::Not => "!",
                    UnaryOp::Neg => "-",
                })?;
                operand.fmt_operand(f, operand.precedence() < PRIMARY_PRECEDENCE)
            }
            Node::Binary { op, left, right } => {
                let p = op.precedence();
                left.fmt_operand(f, left.precedence() < p)?;
                write!(f, " {} ", op.symbol())?;
                right.fmt_operand(f, right.precedence() <= p)
            }
            Node::Coalesce(left, right) => {
                left.fmt_operand(f, left.precedence() < COALESCE_PRECEDENCE)?;
                f.write_str(" | ")?;
                right.fmt_operand(f, right.precedence() <= COALESCE_PRECEDENCE)
            }
            Node::Call(func, args) => {
                write!(f, "{}(", func.name())?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_char(')')
            }
            Node::Array(items) => {
                f.write_char('[')?;
                for (i, a) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_char(']')
            }
            Node::Object(members) => {
                f.write_char('{')?;
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_json_string(f, k)?;
                    write!(f, ": {v}")?;
                }
                f.write_char('}')
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(segments: Vec<Segment>) -> Node {
        Node::Path {
            root: Root::Var(Var::Input),
            segments,
        }
    }

    #[test]
    fn segments_render_canonically() {
        let n = path(vec![
            Segment::Field("a".into()),
            Segment::Field("key with space".into()),
            Segment::Index(-1),
            Segment::Wildcard,
            Segment::Slice(Some(1), None, Some(2)),
            Segment::Union(vec![Selector::Index(0), Selector::Name("x".into())]),
            Segment::Recursive(Some("n".into())),
            Segment::Recursive(None),
        ]);
        assert_eq!(
            n.to_string(),
            r#"$input.a["key with space"][-1][*][1::2][0,"x"]..n..*"#
        );
    }

    #[test]
    fn binary_operands_get_parentheses_only_when_needed() {
        let one = || Box::new(Node::Literal(json!(1)));
        let sum = Node::Binary {
            op: BinaryOp::Add,
            left: one(),
            right: one(),
        };
        let prod = Node::Binary {
            op: BinaryOp::Mul,
            left: Box::new(sum.clone()),
            right: one(),
        };
        assert_eq!(prod.to_string(), "(1 + 1) * 1");
        let right_nested = Node::Binary {
            op: BinaryOp::Sub,
            left: one(),
            right: Box::new(sum),
        };
        assert_eq!(right_nested.to_string(), "1 - (1 + 1)");
        let not = Node::Unary(UnaryOp::Not, Box::new(right_nested));
        assert_eq!(not.to_string(), "!(1 - (1 + 1))");
    }

    #[test]
    fn regex_literal_escapes_slashes_and_compares_by_source() {
        let r = RegexLit::new(r"a\/b\d", "i").unwrap();
        assert_eq!(r.pattern(), r"a/b\d");
        assert_eq!(r.to_string(), r"/a\/b\d/i");
        assert!(r.regex().is_match("xA/B7"));
        assert_eq!(r, RegexLit::new("a/b\\d", "i").unwrap());
        assert!(RegexLit::new("a", "q").is_err());
        assert!(RegexLit::new("(", "").is_err());
    }

    #[test]
    fn references_looks_inside_filters() {
        let n = path(vec![Segment::Filter(Box::new(Node::Path {
            root: Root::Var(Var::Const),
            segments: vec![],
        }))]);
        assert!(n.references(Var::Const));
        assert!(n.references(Var::Input));
        assert!(!n.references(Var::Result));
        assert!(n.is_indefinite_path());
    }
}

//! [`Expr`]: a parsed expression together with its canonical text.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ast::Node;
use super::parse::{parse, ParseError, CANONICAL};
use super::vars::Var;

/// A parsed expression. It keeps its canonical text: the source when parsed with
/// [`CANONICAL`], otherwise the canonical rendering of the tree (so `$Input.a` parsed with a
/// CloudFlow syntax reads back as `$input.a`). Equality compares trees, not text.
///
/// Serde form: the canonical text as a JSON string, parsed with [`CANONICAL`] on the way in.
#[derive(Clone)]
pub struct Expr {
    text: String,
    node: Node,
    /// Which variables the tree reads (bit `i` for `Var::ALL[i]`), worked out once: the
    /// engine asks before every evaluation whether to bind `$context` and `$global`.
    reads: u16,
}

/// The variables `node` reads, as a bit set over [`Var::ALL`].
fn reads_of(node: &Node) -> u16 {
    Var::ALL
        .iter()
        .enumerate()
        .filter(|(_, v)| node.references(**v))
        .fold(0, |bits, (i, _)| bits | (1 << i))
}

impl Expr {
    /// An expression for a tree built by hand (or by a dialect); its text is the rendering.
    pub fn from_node(node: Node) -> Expr {
        Expr {
            text: node.to_string(),
            reads: reads_of(&node),
            node,
        }
    }

    /// An expression whose canonical `text` is already known to parse to `node`.
    pub(crate) fn with_text(text: String, node: Node) -> Expr {
        Expr {
            text,
            reads: reads_of(&node),
            node,
        }
    }

    /// Whether the expression reads `var` anywhere (filters and arguments included).
    pub fn references(&self, var: Var) -> bool {
        let i = Var::ALL.iter().position(|v| *v == var).unwrap_or(0);
        self.reads & (1 << i) != 0
    }

    /// Parses canonical text (shorthand for `parse(text, &CANONICAL)`).
    pub fn canonical(text: &str) -> Result<Expr, ParseError> {
        parse(text, &CANONICAL)
    }

    /// The canonical text (re-parses with [`CANONICAL`] to an equal tree).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The syntax tree.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The variable this expression reads whole, when it is nothing but that variable
    /// (`$input`, `$scope_local`): its value is the variable's value, unchanged.
    pub fn bare_var(&self) -> Option<Var> {
        match &self.node {
            Node::Path {
                root: super::ast::Root::Var(var),
                segments,
            } if segments.is_empty() => Some(*var),
            _ => None,
        }
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.node == other.node
    }
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Expr({:?})", self.text)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Expr {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s, &CANONICAL)
    }
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text, &CANONICAL)
            .map_err(|e| serde::de::Error::custom(format!("invalid expression {:?}: {e}", text)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::Syntax;
    use super::super::vars::Var;
    use super::*;
    use serde_json::json;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn is_send_and_sync() {
        assert_send_sync::<Expr>();
    }

    #[test]
    fn serde_round_trip_keeps_canonical_text() {
        let e: Expr = serde_json::from_value(json!("$.a  >  1 && $input.b =~ /x/")).unwrap();
        assert_eq!(e.text(), "$.a  >  1 && $input.b =~ /x/");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v, json!("$.a  >  1 && $input.b =~ /x/"));
        let back: Expr = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn vendor_expressions_serialize_canonically() {
        const CLOUDFLOW: Syntax = Syntax {
            roots: &[("Input", Var::Input), ("Output", Var::Result)],
            bare_dollar: None,
        };
        let e = parse("format(\"id {}\", $Output.id) == $Input.x", &CLOUDFLOW).unwrap();
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v, json!("format(\"id {}\", $result.id) == $input.x"));
        let back: Expr = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
        assert_eq!(e.to_string(), e.text());
    }

    #[test]
    fn deserialize_error_names_the_problem() {
        let err = serde_json::from_value::<Expr>(json!("$.a ==")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("invalid expression \"$.a ==\""), "{msg}");
        assert!(msg.contains("at offset 6"), "{msg}");
        assert!(serde_json::from_value::<Expr>(json!(5)).is_err());
    }

    #[test]
    fn equality_is_by_tree_and_from_str_works() {
        let a: Expr = "$.a==1".parse().unwrap();
        let b = Expr::canonical("$input.a == 1").unwrap();
        assert_eq!(a, b);
        assert_ne!(a.text(), b.text());
        assert_ne!(a, Expr::canonical("$input.a == 2").unwrap());
        let c = Expr::from_node(b.node().clone());
        assert_eq!(c.text(), "$input.a == 1");
        assert_eq!(format!("{c:?}"), "Expr(\"$input.a == 1\")");
    }
}

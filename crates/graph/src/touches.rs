//! `Touches:` areas and whether two of them overlap.
//!
//! Globs are gitignore-style and compiled with `globset` (`*` and `?` stay within one path
//! component, `**` spans components). A glob without wildcards names a file or a directory,
//! so `src/api` also covers `src/api/**`. Whether two globs can match a common path is decided
//! with witnesses: concrete paths built from each glob (wildcards filled in, and the literal
//! prefix of one joined to the literal suffix of the other) that are tested against both. This
//! is a heuristic in the direction of caution: it finds every overlap between the common
//! shapes (`dir/**`, `dir/*.ext`, `dir/**/*.ext`, literal files) and may miss exotic ones
//! such as two character classes that only share a letter deep inside.

use globset::{GlobBuilder, GlobMatcher};

/// The compiled `Touches:` globs of one task.
#[derive(Debug, Clone)]
pub struct Area {
    globs: Vec<(String, Vec<GlobMatcher>, Vec<String>)>,
}

const META: &[char] = &['*', '?', '[', '{'];

fn compile(glob: &str) -> Option<GlobMatcher> {
    GlobBuilder::new(glob)
        .literal_separator(true)
        .build()
        .ok()
        .map(|g| g.compile_matcher())
}

fn normalise(glob: &str) -> String {
    let g = glob.trim().trim_start_matches("./");
    if let Some(stripped) = g.strip_suffix('/') {
        format!("{stripped}/**")
    } else {
        g.to_owned()
    }
}

/// Concrete paths the glob matches: wildcards filled with `x`, `**/` also dropped,
/// the first alternative of `{a,b}` and the first member of `[...]`.
fn witnesses(glob: &str) -> Vec<String> {
    let fill = |drop_globstar: bool| {
        let mut out = String::new();
        let mut chars = glob.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    if drop_globstar && chars.peek() == Some(&'/') {
                        chars.next();
                    } else {
                        out.push('x');
                    }
                }
                '*' | '?' => out.push('x'),
                '[' => {
                    let mut first = None;
                    for d in chars.by_ref() {
                        if d == ']' && first.is_some() {
                            break;
                        }
                        if first.is_none() && d != '!' && d != '^' {
                            first = Some(d);
                        }
                    }
                    out.push(first.unwrap_or('x'));
                }
                '{' => {
                    let mut depth = 1;
                    let mut taking = true;
                    for d in chars.by_ref() {
                        match d {
                            '{' => depth += 1,
                            '}' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            ',' if depth == 1 => taking = false,
                            _ if taking => out.push(d),
                            _ => {}
                        }
                    }
                }
                _ => out.push(c),
            }
        }
        out
    };
    let mut v = vec![fill(false), fill(true)];
    v.dedup();
    v
}

fn literal_prefix(glob: &str) -> &str {
    glob.find(META).map_or(glob, |i| &glob[..i])
}

fn literal_suffix(glob: &str) -> &str {
    glob.rfind(['*', '?', ']', '}'])
        .map_or("", |i| &glob[i + 1..])
}

impl Area {
    /// Compiles `globs`; returns the area and the globs that did not compile (left out).
    pub fn new(globs: &[String]) -> (Area, Vec<String>) {
        let mut bad = Vec::new();
        let mut out = Vec::new();
        for g in globs {
            let n = normalise(g);
            let Some(m) = compile(&n) else {
                bad.push(g.clone());
                continue;
            };
            let mut matchers = vec![m];
            if !n.contains(META)
                && let Some(dir) = compile(&format!("{n}/**"))
            {
                matchers.push(dir);
            }
            let w = witnesses(&n);
            out.push((n, matchers, w));
        }
        (Area { globs: out }, bad)
    }

    /// The first pair of globs (one of `self`, one of `other`) that can match a common path.
    pub fn overlap(&self, other: &Area) -> Option<(String, String)> {
        for (ga, ma, wa) in &self.globs {
            for (gb, mb, wb) in &other.globs {
                if globs_overlap((ga, ma, wa), (gb, mb, wb)) {
                    return Some((ga.clone(), gb.clone()));
                }
            }
        }
        None
    }
}

type Compiled<'a> = (&'a String, &'a Vec<GlobMatcher>, &'a Vec<String>);

fn globs_overlap(a: Compiled<'_>, b: Compiled<'_>) -> bool {
    let hits = |m: &Vec<GlobMatcher>, p: &str| m.iter().any(|m| m.is_match(p));
    if a.0 == b.0 {
        return true;
    }
    if a.2.iter().any(|w| hits(b.1, w)) || b.2.iter().any(|w| hits(a.1, w)) {
        return true;
    }
    // Cross witnesses: the literal prefix of one with the literal suffix of the other.
    for (x, y) in [(a, b), (b, a)] {
        let cross = format!("{}x{}", literal_prefix(x.0), literal_suffix(y.0));
        if hits(x.1, &cross) && hits(y.1, &cross) {
            return true;
        }
        let cross = format!("{}x/x{}", literal_prefix(x.0), literal_suffix(y.0));
        if hits(x.1, &cross) && hits(y.1, &cross) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlaps(a: &str, b: &str) -> bool {
        let (x, _) = Area::new(&[a.to_owned()]);
        let (y, _) = Area::new(&[b.to_owned()]);
        x.overlap(&y).is_some()
    }

    #[test]
    fn common_shapes_overlap() {
        assert!(overlaps("src/api/**", "src/api/routes.rs"));
        assert!(overlaps("src/api/**", "src/**/*.rs"));
        assert!(overlaps("src/api", "src/api/routes.rs"));
        assert!(overlaps("src/api/", "src/api/*.rs"));
        assert!(overlaps("src/{api,db}/*.rs", "src/db/**"));
        assert!(overlaps("docs/*.md", "docs/readme.md"));
    }

    #[test]
    fn disjoint_shapes_do_not() {
        assert!(!overlaps("src/api/**", "src/db/**"));
        assert!(!overlaps("src/api/*.rs", "src/api/*.md"));
        assert!(!overlaps("docs/*.md", "docs/sub/readme.md"));
        assert!(!overlaps("README.md", "CHANGELOG.md"));
    }

    #[test]
    fn bad_globs_are_returned() {
        let (_, bad) = Area::new(&["src/[".to_owned(), "ok/**".to_owned()]);
        assert_eq!(bad, vec!["src/[".to_owned()]);
    }
}

//! Markdown to a flat list of blocks with byte ranges, the one pass of pulldown-cmark every
//! dialect reader shares.
//!
//! CommonMark is parsed once with [`pulldown_cmark::Parser::into_offset_iter`]; the readers in
//! [`crate::parse`] then walk the flat sequence, which is simpler than a tree and keeps every
//! element's byte range. Blocks are handed to the reader as soon as they are complete (those
//! inside a list item once the outermost item ends, so that an item still comes before its
//! nested items), and their buffers are reused: a spec costs a handful of allocations here,
//! not several per block.

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};
use std::ops::Range;

/// One block of a markdown document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Block {
    /// `#`..`######` heading.
    Heading {
        /// 1..=6.
        level: u8,
        /// Text, markdown stripped.
        text: Box<Text>,
        /// Byte range of the heading line.
        range: Range<usize>,
    },
    /// A paragraph outside any list.
    Paragraph {
        /// Text, markdown stripped; soft breaks are `\n`.
        text: Box<Text>,
        /// Byte range.
        range: Range<usize>,
    },
    /// A list item's own text (nested lists become their own items with a greater depth).
    Item {
        /// Text of the item, paragraphs joined by `\n`.
        text: Box<Text>,
        /// 1 for a top-level list.
        depth: u32,
        /// `Some(n)` in an ordered list (the item's number).
        number: Option<u64>,
        /// Task list marker: `Some(true)` for `- [x]`.
        checked: Option<bool>,
        /// Byte range of the whole item, nested lists included.
        range: Range<usize>,
    },
    /// A row of a table (header rows included), its cells' text in order.
    Row {
        /// Each cell's text, markdown stripped.
        cells: Vec<String>,
        /// Byte range of the row.
        range: Range<usize>,
    },
    /// A fenced or indented code block.
    Code {
        /// Info string's first word (`gherkin`), empty when none.
        lang: String,
        /// The code.
        code: String,
        /// Byte range.
        range: Range<usize>,
    },
}

/// Text with markdown stripped, plus a map back to source offsets and the strong runs.
#[derive(Debug, Clone, PartialEq, Default)]
#[allow(clippy::struct_field_names)] // `text.text` reads as "the text of a Text"
pub(crate) struct Text {
    /// The plain text. Inline code keeps its content; soft and hard breaks are `\n`.
    pub(crate) text: String,
    /// `(text_start, source_start, len)`: runs copied verbatim from the source.
    segs: Vec<(usize, usize, usize)>,
    /// Byte ranges in `text` that were inside `**strong**`.
    pub(crate) strong: Vec<Range<usize>>,
    /// Byte ranges in `text` that were inline code.
    pub(crate) code: Vec<Range<usize>>,
    /// Byte ranges in `text` that were inline HTML (`<placeholder>` lands here).
    pub(crate) html: Vec<Range<usize>>,
}

impl Text {
    /// Empties the text, keeping its buffers for reuse.
    fn clear(&mut self) {
        self.text.clear();
        self.segs.clear();
        self.strong.clear();
        self.code.clear();
        self.html.clear();
    }

    fn push(&mut self, s: &str, src: &Range<usize>) {
        let at = self.text.len();
        if src.len() == s.len() {
            self.segs.push((at, src.start, s.len()));
        } else if !s.is_empty() {
            // Escapes or entities: only the start maps exactly.
            self.segs.push((at, src.start, 0));
        }
        self.text.push_str(s);
    }

    /// Whether byte `at` of `text` is inside inline code or inline HTML.
    pub(crate) fn in_code(&self, at: usize) -> bool {
        self.code.iter().chain(&self.html).any(|r| r.contains(&at))
    }

    /// Maps a byte offset in `text` to a byte offset in the source (best effort: the nearest
    /// mapped run at or before it).
    pub(crate) fn source_offset(&self, at: usize) -> Option<usize> {
        let i = self.segs.partition_point(|&(t, _, _)| t <= at);
        let &(t, s, len) = self.segs.get(i.checked_sub(1)?)?;
        Some(s + (at - t).min(len))
    }

    /// The first strong run, when it starts the text (leading whitespace aside).
    pub(crate) fn lead_strong(&self) -> Option<&str> {
        let first = self.strong.first()?;
        let lead = self.text.len() - self.text.trim_start().len();
        (first.start <= lead).then(|| self.text.get(first.clone()).unwrap_or("").trim())
    }

    /// The text after the leading strong run, with a leading `:` and whitespace removed.
    pub(crate) fn after_lead_strong(&self) -> &str {
        match self.strong.first() {
            Some(r) if self.lead_strong().is_some() => {
                let rest = self.text.get(r.end..).unwrap_or("");
                rest.trim_start_matches([':', ' ', '\t', '\n']).trim()
            }
            _ => self.text.trim(),
        }
    }
}

impl Block {
    fn into_text(self) -> Option<Box<Text>> {
        match self {
            Block::Heading { text, .. }
            | Block::Paragraph { text, .. }
            | Block::Item { text, .. } => Some(text),
            Block::Code { .. } | Block::Row { .. } => None,
        }
    }
}

/// Where the content `code` of an inline code span starts in its source `raw` (backticks
/// included): the first occurrence, as `raw.find(code)` gives it.
///
/// Non-empty content that does not start with a backtick cannot occur inside the opening run,
/// so the first occurrence is right after the run, or one byte later when CommonMark stripped
/// a space; only otherwise is `raw` searched.
fn code_offset(raw: &str, code: &str) -> Option<usize> {
    let open = raw.bytes().take_while(|&b| b == b'`').count();
    let at = |i: usize| raw.get(i..).is_some_and(|r| r.starts_with(code));
    if !code.is_empty() && !code.starts_with('`') {
        if at(open) {
            return Some(open);
        }
        if at(open + 1) {
            return Some(open + 1);
        }
    }
    memchr::memmem::find(raw.as_bytes(), code.as_bytes())
}

/// Parses `source` into blocks and calls `visit` with each, in document order (a list item
/// before its nested items); every range is shifted by `base` (the offset of `source` in the
/// file, after any front matter).
pub(crate) fn blocks(source: &str, base: usize, mut visit: impl FnMut(&Block)) {
    let opts = Options::ENABLE_TASKLISTS | Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut state = Blocks::new(source, base);
    for (event, rel) in Parser::new_ext(source, opts).into_offset_iter() {
        state.event(event, rel);
        // Outside list items every block is complete once pushed: hand them over.
        state.hand_over(&mut visit);
    }
}

/// The state of one pass of [`blocks`]: the open containers and the blocks not yet visited.
struct Blocks<'s> {
    /// The markdown being parsed (without front matter).
    source: &'s str,
    /// The offset of `source` in the file.
    base: usize,
    /// Blocks waiting for the outermost open list item to end; empty outside lists.
    out: Vec<Block>,
    /// Texts of blocks already visited, for reuse.
    #[allow(clippy::vec_box)] // blocks hold their text boxed: the boxes are reused as they are
    spare: Vec<Box<Text>>,
    // Open containers: (kind, text, range, item metadata).
    heading: Option<(u8, Box<Text>, Range<usize>)>,
    para: Option<(Box<Text>, Range<usize>)>,
    code: Option<(String, String, Range<usize>)>,
    /// Stack of list items: index into `out` of the item block.
    items: Vec<usize>,
    /// Stack of lists: next number for ordered lists.
    lists: Vec<Option<u64>>,
    strong_start: Vec<usize>,
    in_table: usize,
    /// The table row being read: its cells and range.
    row: Option<(Vec<String>, Range<usize>)>,
    /// Depth of `~~struck-through~~` text: withdrawn by its author, so left out.
    struck: usize,
}

impl<'s> Blocks<'s> {
    fn new(source: &'s str, base: usize) -> Self {
        Blocks {
            source,
            base,
            out: Vec::new(),
            spare: Vec::new(),
            heading: None,
            para: None,
            code: None,
            items: Vec::new(),
            lists: Vec::new(),
            strong_start: Vec::new(),
            in_table: 0,
            row: None,
            struck: 0,
        }
    }

    /// An empty text, reusing a visited block's buffers when there is one.
    #[allow(clippy::unnecessary_box_returns)] // the box goes into a block as it is
    fn fresh(&mut self) -> Box<Text> {
        self.spare.pop().map_or_else(Box::<Text>::default, |mut t| {
            t.clear();
            t
        })
    }

    /// The text sink: heading, else paragraph outside lists, else innermost item.
    fn sink(&mut self) -> Option<&mut Text> {
        if let Some((_, t, _)) = self.heading.as_mut() {
            Some(t)
        } else if let Some((t, _)) = self.para.as_mut() {
            Some(t)
        } else if let Some(&i) = self.items.last() {
            match self.out.get_mut(i) {
                Some(Block::Item { text, .. }) => Some(text),
                _ => None,
            }
        } else {
            None
        }
    }

    /// Hands the complete blocks to `visit` when no list item is open, keeping their texts.
    fn hand_over(&mut self, visit: &mut impl FnMut(&Block)) {
        if self.items.is_empty() && !self.out.is_empty() {
            for b in self.out.drain(..) {
                visit(&b);
                self.spare.extend(b.into_text());
            }
        }
    }

    /// Takes one event at `rel` (relative to `source`).
    fn event(&mut self, event: Event<'_>, rel: Range<usize>) {
        let range = rel.start + self.base..rel.end + self.base;
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                self.heading = Some((level as u8, self.fresh(), range));
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((level, text, range)) = self.heading.take() {
                    self.out.push(Block::Heading { level, text, range });
                }
            }
            Event::Start(Tag::Paragraph) => self.start_paragraph(range),
            Event::End(TagEnd::Paragraph) => {
                if let Some((text, range)) = self.para.take() {
                    self.out.push(Block::Paragraph { text, range });
                }
            }
            Event::Start(Tag::List(first)) => self.lists.push(first),
            Event::End(TagEnd::List(_)) => {
                self.lists.pop();
            }
            Event::Start(Tag::Item) => self.start_item(range),
            Event::End(TagEnd::Item) => {
                self.items.pop();
            }
            Event::TaskListMarker(done) => {
                if let Some(&i) = self.items.last()
                    && let Some(Block::Item { checked, .. }) = self.out.get_mut(i)
                {
                    *checked = Some(done);
                }
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                let lang = match kind {
                    CodeBlockKind::Fenced(info) => {
                        info.split_whitespace().next().unwrap_or("").to_owned()
                    }
                    CodeBlockKind::Indented => String::new(),
                };
                self.code = Some((lang, String::new(), range));
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some((lang, code, range)) = self.code.take() {
                    self.out.push(Block::Code { lang, code, range });
                }
            }
            Event::Start(Tag::Strikethrough) => self.struck += 1,
            Event::End(TagEnd::Strikethrough) => self.struck = self.struck.saturating_sub(1),
            Event::Text(_)
            | Event::Code(_)
            | Event::InlineHtml(_)
            | Event::Start(Tag::Strong)
            | Event::End(TagEnd::Strong)
                if self.struck > 0 => {}
            Event::Start(Tag::Strong) => {
                if let Some(t) = self.sink() {
                    let at = t.text.len();
                    self.strong_start.push(at);
                }
            }
            Event::End(TagEnd::Strong) => self.end_strong(),
            Event::Start(Tag::Table(_)) => self.in_table += 1,
            Event::End(TagEnd::Table) => self.in_table = self.in_table.saturating_sub(1),
            Event::Start(Tag::TableRow | Tag::TableHead) => self.row = Some((Vec::new(), range)),
            Event::End(TagEnd::TableRow | TagEnd::TableHead) => {
                if let Some((cells, range)) = self.row.take() {
                    self.out.push(Block::Row { cells, range });
                }
            }
            Event::Start(Tag::TableCell) => {
                if let Some((cells, _)) = self.row.as_mut() {
                    cells.push(String::new());
                }
            }
            Event::Text(s) | Event::Code(s) if self.row.is_some() && self.items.is_empty() => {
                if let Some(cell) = self.row.as_mut().and_then(|r| r.0.last_mut()) {
                    cell.push_str(&s);
                }
            }
            Event::Text(s) => self.text(&s, &range),
            Event::Code(s) => self.inline_code(&s, rel, &range),
            Event::InlineHtml(s) => {
                // Kept as written so that `<placeholder>` leftovers stay visible.
                if let Some(t) = self.sink() {
                    let at = t.text.len();
                    t.push(&s, &range);
                    let end = t.text.len();
                    t.html.push(at..end);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some(t) = self.sink() {
                    t.text.push('\n');
                }
            }
            _ => {}
        }
    }

    /// A paragraph opens a block of its own outside lists and tables; inside an item it
    /// starts a new line of the item's text.
    fn start_paragraph(&mut self, range: Range<usize>) {
        if self.items.is_empty() && self.in_table == 0 {
            self.para = Some((self.fresh(), range));
        } else if let Some(t) = self.sink()
            && !t.text.is_empty()
            && !t.text.ends_with('\n')
        {
            t.text.push('\n');
        }
    }

    /// Opens a list item, numbered when its list is ordered.
    fn start_item(&mut self, range: Range<usize>) {
        let number = self.lists.last_mut().and_then(|n| {
            let cur = *n;
            if let Some(v) = n.as_mut() {
                *v += 1;
            }
            cur
        });
        let text = self.fresh();
        self.out.push(Block::Item {
            text,
            depth: self.lists.len().max(1) as u32,
            number,
            checked: None,
            range,
        });
        self.items.push(self.out.len() - 1);
    }

    /// Closes a strong run: records its range in the sink's text.
    fn end_strong(&mut self) {
        let start = self.strong_start.pop();
        if let (Some(t), Some(s)) = (self.sink(), start) {
            let end = t.text.len();
            t.strong.push(s.min(end)..end);
        }
    }

    /// Text goes to the open code block, else to the sink.
    fn text(&mut self, s: &str, range: &Range<usize>) {
        if let Some((_, c, _)) = self.code.as_mut() {
            c.push_str(s);
        } else if let Some(t) = self.sink() {
            t.push(s, range);
        }
    }

    /// Inline code `s` at `rel` (relative to `source`; `range` in the file).
    fn inline_code(&mut self, s: &str, rel: Range<usize>, range: &Range<usize>) {
        let source = self.source;
        if let Some(t) = self.sink() {
            // Inline code: map its content, which sits inside the backticks.
            let inner = source
                .get(rel)
                .and_then(|raw| code_offset(raw, s))
                .map(|i| range.start + i);
            let at = t.text.len();
            match inner {
                Some(st) => t.push(s, &(st..st + s.len())),
                None => t.push(s, &(range.start..range.start)),
            }
            let end = t.text.len();
            t.code.push(at..end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(src: &str) -> Vec<Block> {
        let mut out = Vec::new();
        blocks(src, 0, |b| out.push(b.clone()));
        out
    }

    #[test]
    fn item_text_after_a_nested_list_stays_with_the_item_and_comes_first() {
        let src = "- parent\n\n  - child\n\n  more parent\n- next\n\nafter\n";
        let texts: Vec<(String, Option<u32>)> = collect(src)
            .iter()
            .map(|b| match b {
                Block::Item { text, depth, .. } => (text.text.clone(), Some(*depth)),
                Block::Paragraph { text, .. } => (text.text.clone(), None),
                other => (format!("{other:?}"), None),
            })
            .collect();
        assert_eq!(
            texts,
            [
                ("parent\nmore parent".to_owned(), Some(1)),
                ("child".to_owned(), Some(2)),
                ("next".to_owned(), Some(1)),
                ("after".to_owned(), None),
            ]
        );
    }

    #[test]
    fn list_items_keep_strong_lead_and_depth() {
        let src = "- **WHEN** a `x` happens\n  - nested\n";
        let b = collect(src);
        let Some(Block::Item { text, depth, .. }) = b.first() else {
            panic!("no item: {b:?}");
        };
        assert_eq!(text.lead_strong(), Some("WHEN"));
        assert_eq!(text.after_lead_strong(), "a x happens");
        assert_eq!(*depth, 1);
        assert!(matches!(b.get(1), Some(Block::Item { depth: 2, .. })));
    }

    #[test]
    fn struck_through_text_is_left_out() {
        let b = collect("- ~~**FR-035**: old~~ deferred\n");
        let Some(Block::Item { text, .. }) = b.first() else {
            panic!("no item: {b:?}");
        };
        assert_eq!(text.text.trim(), "deferred");
        assert!(
            text.strong.iter().all(std::ops::Range::is_empty),
            "{:?}",
            text.strong
        );
    }

    #[test]
    fn code_offset_is_the_first_occurrence() {
        for (raw, code) in [
            ("`x`", "x"),
            ("`` a ``", "a"),
            ("`` `a` ``", "`a`"),
            ("``a`b``", "a`b"),
            ("` `` `", "``"),
            ("`  `", "  "),
            ("```x```", "x"),
            ("`ab`", "b"),
            ("`a`", ""),
        ] {
            assert_eq!(code_offset(raw, code), raw.find(code), "{raw:?} {code:?}");
        }
    }

    #[test]
    fn source_offset_maps_back() {
        let src = "Some *emph* text with fast word\n";
        let b = collect(src);
        let Some(Block::Paragraph { text, .. }) = b.first() else {
            panic!("no paragraph");
        };
        let at = text.text.find("fast").unwrap_or(0);
        assert_eq!(text.source_offset(at), src.find("fast"));
    }
}

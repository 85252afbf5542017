//! The register extract as a PDF: A4 pages with the company's name, the date and page
//! numbers, laid out from the extract's model. DejaVu Sans (shipped in `static/fonts`)
//! covers every Latin script a register may hold (ł, ő, č, …).

use std::sync::LazyLock;

use krilla::{
    Document,
    color::rgb,
    geom::{PathBuilder, Point},
    metadata::Metadata,
    num::NormalizedF32,
    page::PageSettings,
    paint::{Fill, Stroke},
    surface::Surface,
    text::{Font, GlyphId, KrillaGlyph},
};
use serde::{Deserialize, Deserializer, de};
use serde_json::Value;

use super::extract::Extract;
use crate::web::Tr;

static REGULAR: &[u8] = include_bytes!("../../static/fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../../static/fonts/DejaVuSans-Bold.ttf");

struct Faces {
    regular: ttf_parser::Face<'static>,
    bold: ttf_parser::Face<'static>,
}

static FACES: LazyLock<Faces> = LazyLock::new(|| Faces {
    regular: ttf_parser::Face::parse(REGULAR, 0).expect("the shipped font parses"),
    bold: ttf_parser::Face::parse(BOLD, 0).expect("the shipped font parses"),
});

const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
const MARGIN: f32 = 56.0;
const TOP: f32 = 92.0;
const BOTTOM: f32 = HEIGHT - 64.0;
const INDENT: f32 = 14.0;

/// One line of text placed on a page.
struct Run {
    x: f32,
    y: f32,
    size: f32,
    bold: bool,
    muted: bool,
    text: String,
}

/// Places lines top to bottom, wrapping at the margin and starting new pages.
struct Pages {
    pages: Vec<Vec<Run>>,
    y: f32,
}

/// Advances (font units) of the first code points, looked up once per font.
const CACHED: usize = 0x0250;

struct Advances {
    face: &'static ttf_parser::Face<'static>,
    /// (glyph, advance) of each cached code point.
    cached: Vec<(u16, u16)>,
    per_em: f32,
}

impl Advances {
    fn of(face: &'static ttf_parser::Face<'static>) -> Self {
        let mut advances = Self {
            face,
            cached: Vec::new(),
            per_em: f32::from(face.units_per_em()),
        };
        advances.cached = (0..CACHED as u32)
            .map(|c| char::from_u32(c).map_or((0, 0), |c| advances.lookup(c)))
            .collect();
        advances
    }

    fn lookup(&self, c: char) -> (u16, u16) {
        let glyph = self.face.glyph_index(c).unwrap_or(ttf_parser::GlyphId(0));
        (glyph.0, self.face.glyph_hor_advance(glyph).unwrap_or(0))
    }

    fn glyph(&self, c: char) -> (u16, u16) {
        self.cached
            .get(c as usize)
            .copied()
            .unwrap_or_else(|| self.lookup(c))
    }

    fn units(&self, c: char) -> u16 {
        self.glyph(c).1
    }

    /// The glyphs of a line, one per character: the registers hold Latin text, which
    /// needs no shaping (and shaping every line would cost most of the extract's time).
    fn glyphs(&self, text: &str) -> Vec<KrillaGlyph> {
        text.char_indices()
            .map(|(i, c)| {
                let (glyph, advance) = self.glyph(c);
                KrillaGlyph::new(
                    GlyphId::new(u32::from(glyph)),
                    f32::from(advance) / self.per_em,
                    0.0,
                    0.0,
                    0.0,
                    i..i + c.len_utf8(),
                    None,
                )
            })
            .collect()
    }
}

static ADVANCES: LazyLock<[Advances; 2]> =
    LazyLock::new(|| [Advances::of(&FACES.regular), Advances::of(&FACES.bold)]);

fn advances(bold: bool) -> &'static Advances {
    &ADVANCES[usize::from(bold)]
}

fn width(text: &str, size: f32, bold: bool) -> f32 {
    let a = advances(bold);
    let units: u32 = text.chars().map(|c| u32::from(a.units(c))).sum();
    units as f32 * size / a.per_em
}

/// Splits text into lines no wider than `max`, at spaces, or inside a word longer than
/// a line.
fn wrap(text: &str, size: f32, bold: bool, max: f32) -> Vec<String> {
    let char_width = |c: char| f32::from(advances(bold).units(c)) * size / advances(bold).per_em;
    let space = char_width(' ');
    let mut lines = Vec::new();
    for paragraph in text.lines() {
        let (mut line, mut used) = (String::new(), 0.0);
        for word in paragraph.split(' ') {
            let w = width(word, size, bold);
            let gap = if line.is_empty() { 0.0 } else { space };
            if used + gap + w <= max {
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
                used += gap + w;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                used = 0.0;
            }
            if w <= max {
                line.push_str(word);
                used = w;
                continue;
            }
            for c in word.chars() {
                let cw = char_width(c);
                if used + cw > max && !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    used = 0.0;
                }
                line.push(c);
                used += cw;
            }
        }
        lines.push(line);
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

impl Pages {
    fn new() -> Self {
        Self {
            pages: vec![Vec::new()],
            y: TOP,
        }
    }

    fn gap(&mut self, h: f32) {
        self.y += h;
    }

    fn text(&mut self, text: &str, size: f32, bold: bool, muted: bool, indent: f32) {
        let x = MARGIN + indent;
        let leading = size * 1.4;
        for line in wrap(text, size, bold, WIDTH - MARGIN - x) {
            if self.y + leading > BOTTOM {
                self.pages.push(Vec::new());
                self.y = TOP;
            }
            self.y += leading;
            let page = self.pages.last_mut().expect("a page");
            page.push(Run {
                x,
                y: self.y,
                size,
                bold,
                muted,
                text: line,
            });
        }
    }

    /// Keeps a heading with at least a few lines after it.
    fn heading(&mut self, text: &str, size: f32, indent: f32) {
        if self.y + size * 5.0 > BOTTOM {
            self.pages.push(Vec::new());
            self.y = TOP;
        } else {
            self.gap(size * 0.6);
        }
        self.text(text, size, true, false, indent);
    }
}

/// Held data read back in the order its register wrote it (a JSON object read into a
/// `Value` would come out sorted by key).
enum Node {
    Scalar(Value),
    List(Vec<Node>),
    Fields(Vec<(String, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Scalar(v.into()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Scalar(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
                Ok(Node::Scalar(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Scalar(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Scalar(v.into()))
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Scalar(Value::Null))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::List(items))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    fields.push(entry);
                }
                Ok(Node::Fields(fields))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A field's label: its translation, else the name with its underscores as spaces.
fn label(t: Tr, key: &str) -> String {
    match t.find(&format!("extract.key.{key}")) {
        Some(label) => label.to_string(),
        None => {
            let mut s = key.replace('_', " ");
            if let Some(first) = s.get(..1) {
                s.replace_range(..1, &first.to_uppercase());
            }
            s
        }
    }
}

fn scalar(t: Tr, value: &Value) -> Option<String> {
    match value {
        Value::Null => Some("—".into()),
        Value::Bool(true) => Some(t.get("extract.yes").into()),
        Value::Bool(false) => Some(t.get("extract.no").into()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if s.is_empty() => Some("—".into()),
        Value::String(s) => Some(moment(s).unwrap_or_else(|| s.clone())),
        _ => None,
    }
}

/// A stored moment (RFC 3339) as a reader writes it: `2026-11-30 11:46 UTC`.
fn moment(s: &str) -> Option<String> {
    let at = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    at.format(time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute] UTC"
    ))
    .ok()
}

/// A record whose fields are all plain values.
fn flat(node: &Node) -> bool {
    matches!(node, Node::Fields(fields) if fields.iter().all(|(_, v)| matches!(v, Node::Scalar(_))))
}

/// Lays out held data: fields as "label: value", lists as numbered blocks.
fn held(pages: &mut Pages, t: Tr, node: &Node, indent: f32) {
    let line = |pages: &mut Pages, text: String| pages.text(&text, 10.0, false, false, indent);
    match node {
        Node::Fields(fields) => {
            for (key, value) in fields {
                match value {
                    Node::Scalar(v) => {
                        let v = scalar(t, v).unwrap_or_default();
                        line(pages, format!("{}: {v}", label(t, key)));
                    }
                    _ => {
                        pages.heading(&label(t, key), 10.5, indent);
                        held(pages, t, value, indent + INDENT);
                    }
                }
            }
        }
        Node::List(items) if items.is_empty() => {
            pages.text(t.get("extract.none"), 10.0, false, true, indent);
        }
        // Records of plain fields (a log, a history): a header of labels, then one
        // line per record.
        Node::List(items) if items.iter().all(flat) => {
            if let Some(Node::Fields(first)) = items.first() {
                let labels: Vec<String> = first.iter().map(|(k, _)| label(t, k)).collect();
                pages.text(&labels.join(" · "), 9.0, true, true, indent);
            }
            for item in items {
                if let Node::Fields(fields) = item {
                    let values: Vec<String> = fields
                        .iter()
                        .filter_map(|(_, v)| match v {
                            Node::Scalar(v) => scalar(t, v),
                            _ => None,
                        })
                        .collect();
                    line(pages, format!("• {}", values.join(" · ")));
                }
            }
        }
        Node::List(items) => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Node::Scalar(v) => {
                        line(pages, format!("• {}", scalar(t, v).unwrap_or_default()))
                    }
                    _ => {
                        pages.text(&format!("{}.", i + 1), 10.0, true, true, indent);
                        held(pages, t, item, indent + INDENT);
                    }
                }
            }
        }
        Node::Scalar(v) => line(pages, scalar(t, v).unwrap_or_default()),
    }
}

fn layout(extract: &Extract, t: Tr, day: &str) -> serde_json::Result<Pages> {
    let mut pages = Pages::new();
    pages.text(t.get("extract.title"), 18.0, true, false, 0.0);
    pages.text(
        &t.with("extract.intro", "address", &extract.subject),
        10.0,
        false,
        false,
        0.0,
    );
    pages.text(
        &format!(
            "{}: {} · {}",
            t.get("register.controller"),
            extract.controller,
            extract.controller_contact
        ),
        10.0,
        false,
        true,
        0.0,
    );
    pages.text(&t.with("extract.date", "day", day), 10.0, false, true, 0.0);
    if extract.sections.is_empty() {
        pages.heading(t.get("extract.nothing"), 12.0, 0.0);
    }
    for section in &extract.sections {
        let p = &section.processing;
        pages.gap(8.0);
        pages.heading(&p.name, 15.0, 0.0);
        pages.heading(t.get("extract.held"), 12.0, 0.0);
        let node: Node = serde_json::from_str(section.held.get())?;
        held(&mut pages, t, &node, INDENT);
        pages.heading(t.get("register.purposes"), 12.0, 0.0);
        for (purpose, basis) in &p.purposes {
            pages.text(
                &format!("• {purpose} ({basis})"),
                10.0,
                false,
                false,
                INDENT,
            );
        }
        pages.heading(t.get("register.recipients"), 12.0, 0.0);
        for r in &p.recipients {
            pages.text(&format!("• {r}"), 10.0, false, false, INDENT);
        }
        pages.text(
            &format!("{}: {}", t.get("register.transfers"), p.transfers),
            10.0,
            false,
            false,
            INDENT,
        );
        pages.heading(t.get("register.retention"), 12.0, 0.0);
        for r in &p.retention {
            pages.text(&format!("• {r}"), 10.0, false, false, INDENT);
        }
        pages.text(
            &format!("{}: {}", t.get("register.responsible"), p.responsible),
            10.0,
            false,
            false,
            INDENT,
        );
    }
    pages.heading(t.get("privacy.rights"), 12.0, 0.0);
    pages.text(t.get("extract.rights"), 10.0, false, false, 0.0);
    Ok(pages)
}

/// Draws one line of text at `(x, y)` (its baseline).
fn draw(surface: &mut Surface, font: &Font, bold: bool, size: f32, x: f32, y: f32, text: &str) {
    let glyphs = advances(bold).glyphs(text);
    surface.draw_glyphs(
        Point::from_xy(x, y),
        &glyphs,
        font.clone(),
        text,
        size,
        false,
    );
}

fn fill(gray: u8) -> Fill {
    Fill {
        paint: rgb::Color::new(gray, gray, gray).into(),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    }
}

/// Renders the extract as a PDF in its own language.
pub fn render(extract: &Extract) -> anyhow::Result<Vec<u8>> {
    let t = Tr(extract.language);
    let day = crate::web::day(&extract.generated_at);
    let regular = Font::new(REGULAR.into(), 0).ok_or_else(|| anyhow::anyhow!("font"))?;
    let bold = Font::new(BOLD.into(), 0).ok_or_else(|| anyhow::anyhow!("font"))?;
    let pages = layout(extract, t, &day)?.pages;
    let total = pages.len();
    let mut document = Document::new();
    document.set_metadata(
        Metadata::new()
            .title(format!(
                "{} · {}",
                t.get("extract.title"),
                extract.controller
            ))
            .language(extract.language.code().to_string())
            .creator(extract.controller.clone()),
    );
    let settings =
        PageSettings::from_wh(WIDTH, HEIGHT).ok_or_else(|| anyhow::anyhow!("page size"))?;
    for (i, runs) in pages.iter().enumerate() {
        let mut page = document.start_page_with(settings.clone());
        let mut surface = page.surface();
        surface.set_fill(Some(fill(0)));
        draw(
            &mut surface,
            &bold,
            true,
            11.0,
            MARGIN,
            48.0,
            &extract.controller,
        );
        surface.set_fill(Some(fill(80)));
        let title = t.get("extract.title");
        let x = WIDTH - MARGIN - width(title, 9.0, false);
        draw(&mut surface, &regular, false, 9.0, x, 48.0, title);
        let mut rule = PathBuilder::new();
        rule.move_to(MARGIN, 58.0);
        rule.line_to(WIDTH - MARGIN, 58.0);
        if let Some(path) = rule.finish() {
            surface.set_fill(None);
            surface.set_stroke(Some(Stroke {
                paint: rgb::Color::new(160, 160, 160).into(),
                width: 0.5,
                ..Default::default()
            }));
            surface.draw_path(&path);
            surface.set_stroke(None);
        }
        for run in runs {
            surface.set_fill(Some(fill(if run.muted { 80 } else { 0 })));
            let font = if run.bold { &bold } else { &regular };
            draw(
                &mut surface,
                font,
                run.bold,
                run.size,
                run.x,
                run.y,
                &run.text,
            );
        }
        surface.set_fill(Some(fill(80)));
        let footer = format!(
            "{day} · {}",
            t.with("extract.page", "n", i + 1)
                .replace("{total}", &total.to_string())
        );
        let x = WIDTH - MARGIN - width(&footer, 9.0, false);
        draw(
            &mut surface,
            &regular,
            false,
            9.0,
            x,
            HEIGHT - 36.0,
            &footer,
        );
        surface.finish();
        page.finish();
    }
    document
        .finish()
        .map_err(|e| anyhow::anyhow!("writing the PDF: {e:?}"))
}

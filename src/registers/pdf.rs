//! The incoming register printed as a PDF in the legal register's columns (Decree 30/2020
//! Appendix IV), for the clerk to print, sign and close at year end.
//!
//! Only this module knows `printpdf`. The text is set in a TrueType font read at run time
//! (DejaVu Sans by default, Debian package `fonts-dejavu-core`), embedded whole, with a
//! ToUnicode map so that the Vietnamese text can be searched and extracted (`pdftotext`).
//! Columns wrap their text by an estimate of the font's average character width; a line
//! never runs into the next column by more than a few characters of that estimate.

use std::path::Path;

use printpdf::{IndirectFontRef, Line, Mm, PdfDocument, PdfLayerReference, Point};

use super::{INCOMING_COLUMNS, IncomingEntry, incoming_row};

/// Where Debian's `fonts-dejavu-core` puts DejaVu Sans, which covers Vietnamese.
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// Largest font file read, in bytes.
pub const FONT_BYTES_MAX: u64 = 32 << 20;

/// A4 landscape.
const PAGE_W_MM: f32 = 297.0;
const PAGE_H_MM: f32 = 210.0;
const MARGIN_MM: f32 = 10.0;
/// Column widths in millimetres, in [`INCOMING_COLUMNS`] order; they fill the page
/// between the margins.
const COLUMN_MM: [f32; 10] = [20.0, 13.0, 36.0, 28.0, 20.0, 70.0, 30.0, 18.0, 20.0, 22.0];
const FONT_PT: f32 = 8.0;
const LINE_MM: f32 = 3.6;
const PT_MM: f32 = 0.3528;
/// DejaVu Sans' average advance, as a fraction of the font size.
const AVERAGE_ADVANCE_EM: f32 = 0.55;

/// Why the register could not be printed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PdfError {
    /// The font could not be read.
    #[error(
        "cannot read font {path}: {reason} (on Debian: apt-get install fonts-dejavu-core, or pass --font)"
    )]
    Font {
        /// The font file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The PDF could not be made.
    #[error("cannot make the PDF: {0}")]
    Pdf(String),
}

/// What goes on the register's cover lines.
#[derive(Clone, Debug)]
pub struct Cover {
    /// The organisation's name.
    pub org_name: String,
    /// Its id.
    pub org: String,
    /// The year.
    pub year: i32,
    /// When the register was closed, if it was.
    pub closed_at: Option<String>,
}

/// Reads a TrueType font file (at most [`FONT_BYTES_MAX`]).
pub fn read_font(path: &Path) -> Result<Vec<u8>, PdfError> {
    let err = |reason: String| PdfError::Font {
        path: path.display().to_string(),
        reason,
    };
    let len = std::fs::metadata(path)
        .map_err(|e| err(e.to_string()))?
        .len();
    if len > FONT_BYTES_MAX {
        return Err(err(format!("{len} bytes is larger than a font")));
    }
    std::fs::read(path).map_err(|e| err(e.to_string()))
}

/// The register as PDF bytes: a title block, then one table row per entry with the ten
/// legal columns, on as many A4 landscape pages as it takes, the header row repeated on
/// each page.
pub fn incoming_pdf(
    cover: &Cover,
    entries: &[IncomingEntry],
    font: &[u8],
) -> Result<Vec<u8>, PdfError> {
    let title = format!(
        "Sổ đăng ký văn bản đến — {} — {}",
        cover.org_name, cover.year
    );
    let (doc, page, layer) = PdfDocument::new(&title, Mm(PAGE_W_MM), Mm(PAGE_H_MM), "register");
    let font = doc
        .add_external_font(std::io::Cursor::new(font))
        .map_err(|e| PdfError::Font {
            path: "(font bytes)".into(),
            reason: e.to_string(),
        })?;
    let mut layer = doc.get_page(page).get_layer(layer);
    let mut y = PAGE_H_MM - MARGIN_MM;

    let first = entries.first().map(|e| e.number).unwrap_or(0);
    let last = entries.last().map(|e| e.number).unwrap_or(0);
    for (size, text) in [
        (9.0, cover.org_name.to_uppercase()),
        (14.0, "SỔ ĐĂNG KÝ VĂN BẢN ĐẾN".to_owned()),
        (
            9.0,
            format!(
                "Năm {} — Từ số {first} đến số {last}{} — {}",
                cover.year,
                match &cover.closed_at {
                    Some(at) => format!(" — đã khóa sổ {at}"),
                    None => String::new(),
                },
                cover.org
            ),
        ),
    ] {
        y -= size * PT_MM * 1.4;
        layer.use_text(text, size, Mm(MARGIN_MM), Mm(y), &font);
    }
    y -= 3.0;

    let header: Vec<String> = INCOMING_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    y = row(&layer, &font, &header, y);
    for entry in entries {
        let cells = incoming_row(entry);
        let height = row_height(&cells);
        if y - height < MARGIN_MM {
            let (page, new_layer) = doc.add_page(Mm(PAGE_W_MM), Mm(PAGE_H_MM), "register");
            layer = doc.get_page(page).get_layer(new_layer);
            y = row(&layer, &font, &header, PAGE_H_MM - MARGIN_MM);
        }
        y = row(&layer, &font, &cells, y);
    }
    doc.save_to_bytes()
        .map_err(|e| PdfError::Pdf(e.to_string()))
}

/// Wraps `text` into lines of at most `width_mm` (estimated), breaking at spaces where it
/// can and inside words only when one word is wider than the column.
fn wrap(text: &str, width_mm: f32) -> Vec<String> {
    let per_line = ((width_mm - 1.5) / (FONT_PT * PT_MM * AVERAGE_ADVANCE_EM)).max(1.0) as usize;
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        while word.len() > per_line {
            if !current.is_empty() {
                lines.push(std::mem::take(&mut current));
            }
            lines.push(word.drain(..per_line).collect());
        }
        let word: String = word.into_iter().collect();
        let needed =
            current.chars().count() + usize::from(!current.is_empty()) + word.chars().count();
        if needed > per_line && !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&word);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

fn row_height(cells: &[String]) -> f32 {
    let lines = cells
        .iter()
        .zip(COLUMN_MM)
        .map(|(c, w)| wrap(c, w).len().max(1))
        .max()
        .unwrap_or(1);
    lines as f32 * LINE_MM + 1.5
}

/// Draws one row with its cell borders, top at `top`; returns the next row's top.
fn row(layer: &PdfLayerReference, font: &IndirectFontRef, cells: &[String], top: f32) -> f32 {
    let height = row_height(cells);
    let bottom = top - height;
    let mut x = MARGIN_MM;
    for (cell, width) in cells.iter().zip(COLUMN_MM) {
        for (i, line) in wrap(cell, width).into_iter().enumerate() {
            let baseline = top - LINE_MM * (i as f32 + 1.0);
            layer.use_text(line, FONT_PT, Mm(x + 0.8), Mm(baseline), font);
        }
        x += width;
    }
    let line = |points: [(f32, f32); 2]| Line {
        points: points
            .iter()
            .map(|(x, y)| (Point::new(Mm(*x), Mm(*y)), false))
            .collect(),
        is_closed: false,
    };
    let right = MARGIN_MM + COLUMN_MM.iter().sum::<f32>();
    layer.add_line(line([(MARGIN_MM, top), (right, top)]));
    layer.add_line(line([(MARGIN_MM, bottom), (right, bottom)]));
    let mut x = MARGIN_MM;
    layer.add_line(line([(x, top), (x, bottom)]));
    for width in COLUMN_MM {
        x += width;
        layer.add_line(line([(x, top), (x, bottom)]));
    }
    bottom
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_every_character_and_breaks_long_words() {
        let text = "Về đẩy mạnh chuyển đổi số trong hoạt động của các cấp ủy Đảng";
        let lines = wrap(text, 20.0);
        assert!(lines.len() > 1, "{lines:?}");
        assert_eq!(lines.join(" "), text);
        let long = "x".repeat(100);
        let lines = wrap(&long, 20.0);
        assert_eq!(lines.concat(), long);
        assert!(lines.iter().all(|l| l.chars().count() <= 20));
        assert!(wrap("", 20.0).is_empty());
    }

    #[test]
    fn the_columns_fill_a_landscape_page() {
        let total: f32 = COLUMN_MM.iter().sum();
        assert!(
            (total - (PAGE_W_MM - 2.0 * MARGIN_MM)).abs() < 0.01,
            "{total}"
        );
    }
}

//! CSV files as spreadsheets write and read them: separated by commas or semicolons, and
//! with the cells a spreadsheet would run as formulas guarded on the way out.

use std::borrow::Cow;

/// What a cell a spreadsheet runs as a formula begins with.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A reader for `text`, separated by whichever of `;` and `,` its header uses more.
pub fn reader(text: &str) -> csv::Reader<&[u8]> {
    let header_line = text.lines().next().unwrap_or("");
    let delimiter = if header_line.matches(';').count() > header_line.matches(',').count() {
        b';'
    } else {
        b','
    };
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes())
}

/// A cell as exported: one a spreadsheet would run as a formula (or one that begins with
/// the `'` that marks those) gets a leading `'`.
pub fn escape(value: &str) -> Cow<'_, str> {
    if value.starts_with(FORMULA_START) || value.starts_with('\'') {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// The value of a cell the export protected with a leading `'`.
pub fn unescape(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_START) || rest.starts_with('\'') => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_a_spreadsheet_would_run_exports_with_a_quote_and_imports_as_it_was() {
        for value in [
            "=1+2",
            "+358 40 123 4567",
            "-5",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "'quoted",
            "''twice",
            "'=",
            "Åsa",
            "",
        ] {
            assert_eq!(unescape(&escape(value)), value, "{value:?}");
        }
        assert_eq!(escape("+358 40 123 4567"), "'+358 40 123 4567");
        assert_eq!(escape("Anna"), "Anna");
        assert_eq!(unescape("'s-Hertogenbosch"), "'s-Hertogenbosch");
    }
}

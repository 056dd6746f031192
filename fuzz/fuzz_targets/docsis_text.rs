//! The docsis tool's text syntax on arbitrary UTF-8: a config file or an error with a line,
//! never a panic. What parses prints to text that parses back to the same file.

#![no_main]

use libfuzzer_sys::fuzz_target;
use provd_docsis::text;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    match text::parse(src) {
        Ok(file) => {
            let printed = text::print(&file);
            let again = text::parse(&printed).unwrap_or_else(|e| panic!("printed text does not parse: {e}\n{printed}"));
            assert_eq!(again, file, "print -> parse changed the file:\n{printed}");
        }
        Err(e) => assert!(e.line >= 1 && e.column >= 1, "error without a position: {e}"),
    }
});

//! Print a binary config file in the text form with its integrity checks:
//! `cargo run -p provd-docsis --example dump -- FILE [CMTS-KEY]`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: dump FILE [CMTS-KEY]")?;
    let key = args.next();
    let bytes = std::fs::read(&path)?;
    let decoded = provd_docsis::decode(&bytes)?;
    print!("{}", provd_docsis::text::print_decoded(&decoded));
    print!(
        "{}",
        provd_docsis::verify(&bytes, key.as_deref().map(str::as_bytes))?
    );
    Ok(())
}

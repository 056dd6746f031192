//! Compile a text config file: `cargo run -p provd-docsis --example compile -- FILE [CMTS-KEY]`.
//! Files the text names are read relative to the source's folder.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = std::path::PathBuf::from(args.next().ok_or("usage: compile FILE [CMTS-KEY]")?);
    let key = args.next().unwrap_or_default();
    let dir = path
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let loader = |name: &str| std::fs::read(dir.join(name)).map_err(|e| e.to_string());
    let file = provd_docsis::text::parse_with_loader(&std::fs::read(&path)?, &loader)?;
    let bytes = match file.kind {
        provd_docsis::FileKind::Cm => provd_docsis::encode_cm(&file, key.as_bytes())?,
        provd_docsis::FileKind::Mta => provd_docsis::encode_mta(&file, None)?,
    };
    print!(
        "{}",
        provd_docsis::text::print_decoded(&provd_docsis::decode(&bytes)?)
    );
    Ok(())
}

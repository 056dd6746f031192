//! `provd cfg`: DOCSIS and PacketCable config files (what modems and MTAs load, not provd's own
//! config) from the command line, compatible with the docsis tool's text sources.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};

#[derive(Subcommand)]
pub enum DocsisFiles {
    /// Print FILE (binary) in the docsis tool's text form, then whether each MIC or hash
    /// verifies. Exit status 1 if any check fails.
    Decode {
        file: PathBuf,
        /// CMTS MIC key, to check TLV 7.
        #[arg(long, conflicts_with = "key_file")]
        shared_secret: Option<String>,
        /// File holding the CMTS MIC key (trailing CR/LF stripped, as the docsis tool does).
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// Compile a text source to a binary config file.
    Encode {
        file: PathBuf,
        #[arg(long, short)]
        output: PathBuf,
        /// CMTS MIC key (CM files).
        #[arg(long, conflicts_with = "key_file")]
        shared_secret: Option<String>,
        /// File holding the CMTS MIC key (trailing CR/LF stripped).
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// An MTA file with its in-file hash (BASIC flows): sha1 (PacketCable) or md5
        /// (Euro-PacketCable). Without it an MTA source gets no in-file hash.
        #[arg(long, value_enum)]
        mta: Option<MtaHashArg>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum MtaHashArg {
    Sha1,
    Md5,
}

/// The in-file hash as the docsis tool writes it: SHA-1 in the CableLabs MIB's object, MD5 in
/// the Euro-PacketCable one.
fn mta_hash(arg: MtaHashArg) -> provd_docsis::MtaHash {
    use provd_docsis::{HashAlg, HashOid, MtaHash};
    match arg {
        MtaHashArg::Sha1 => MtaHash {
            alg: HashAlg::Sha1,
            oid: HashOid::CableLabs,
        },
        MtaHashArg::Md5 => MtaHash {
            alg: HashAlg::Md5,
            oid: HashOid::EuroPacketCable,
        },
    }
}

pub fn run(cmd: DocsisFiles) -> Result<ExitCode> {
    match cmd {
        DocsisFiles::Decode {
            file,
            shared_secret,
            key_file,
        } => decode(&file, key(shared_secret, key_file.as_deref())?.as_deref()),
        DocsisFiles::Encode {
            file,
            output,
            shared_secret,
            key_file,
            mta,
        } => encode(
            &file,
            &output,
            key(shared_secret, key_file.as_deref())?.as_deref(),
            mta,
        ),
    }
}

fn key(secret: Option<String>, file: Option<&Path>) -> Result<Option<Vec<u8>>> {
    if let Some(s) = secret {
        return Ok(Some(s.into_bytes()));
    }
    let Some(f) = file else { return Ok(None) };
    let mut k = std::fs::read(f).with_context(|| format!("reading key file {}", f.display()))?;
    while k.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        k.pop();
    }
    Ok(Some(k))
}

fn decode(path: &Path, key: Option<&[u8]>) -> Result<ExitCode> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let decoded =
        provd_docsis::decode(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    print!("{}", provd_docsis::text::print(&decoded.file));
    let v = provd_docsis::verify(&bytes, key)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    print!("{v}");
    Ok(if v.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn encode(
    path: &Path,
    out: &Path,
    key: Option<&[u8]>,
    mta: Option<MtaHashArg>,
) -> Result<ExitCode> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    // Sources may name other files (CVC chains); they are relative to the source.
    let loader = |name: &str| -> Result<Vec<u8>, String> {
        std::fs::read(dir.join(name)).map_err(|e| format!("cannot read {name}: {e}"))
    };
    let file = provd_docsis::text::parse_with_loader(&text, &loader)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let bytes = match file.kind {
        provd_docsis::FileKind::Cm => {
            let Some(key) = key else {
                bail!(
                    "{}: a cable modem file needs --shared-secret or --key-file (the CMTS MIC key; \"\" for none)",
                    path.display()
                );
            };
            provd_docsis::encode_cm(&file, key)
        }
        provd_docsis::FileKind::Mta => {
            provd_docsis::encode_mta(&file, mta.map(mta_hash))
        }
    }
    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("provd: wrote {} ({} bytes)", out.display(), bytes.len());
    Ok(ExitCode::SUCCESS)
}

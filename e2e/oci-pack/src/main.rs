//! `oci-pack`: packs one Wasm file (or any file) into an OCI image layout archive, importable
//! with `ctr images import --all-platforms` and pushable with `skopeo copy oci-archive:...`.
//! Prints the manifest digest on stdout.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use oci_pack::image::{self, ImageOpts, Packed};
use oci_pack::wasm::{Kind, describe_component, magic_hex};

#[derive(Parser)]
#[command(
    version,
    about = "Pack a .wasm into an OCI image layout archive for wasmpod's tests"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Ordinary image: the file in a gzip tar layer at the entrypoint path.
    Rootfs {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        platform: Platform,
        /// Where the file goes in the rootfs; also the config's Entrypoint.
        #[arg(long, default_value = "/app.wasm")]
        entrypoint: String,
    },
    /// Image config plus ONE non-tar layer of the given media type.
    Layer {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        platform: Platform,
        /// Layer media type, written as given (unknown ones too, for bad-input tests), e.g.
        /// application/vnd.bytecodealliance.wasm.component.layer.v0+wasm.
        #[arg(long)]
        media_type: String,
        /// The config's Entrypoint (CRI requires some command).
        #[arg(long, default_value = "app.wasm")]
        entrypoint: String,
    },
    /// CNCF Wasm OCI artifact (config application/vnd.wasm.config.v0+json, one application/wasm layer).
    Artifact {
        #[command(flatten)]
        common: Common,
        /// Author recorded in the Wasm config.
        #[arg(long)]
        author: Option<String>,
    },
    /// Print what a file is (component, module, not-wasm) and a component's imports/exports, as JSON.
    Inspect {
        /// The file to look at.
        #[arg(long, visible_alias = "file")]
        wasm: PathBuf,
    },
}

#[derive(Args)]
struct Common {
    /// The file to pack (--file is the same; any file is accepted by rootfs and layer).
    #[arg(long, visible_alias = "file")]
    wasm: PathBuf,
    /// Full image reference, e.g. 127.0.0.1:5000/hello-cli:v1 (index annotation
    /// io.containerd.image.name; its tag becomes org.opencontainers.image.ref.name).
    #[arg(long)]
    name: String,
    /// The archive to write.
    #[arg(long)]
    out: PathBuf,
    /// Creation time (RFC 3339). Default: $SOURCE_DATE_EPOCH, else 1970-01-01T00:00:00Z, so
    /// the same input always gives the same digests.
    #[arg(long)]
    created: Option<String>,
}

#[derive(Args)]
struct Platform {
    /// Config architecture (amd64 lets plain `ctr run` accept the image; or wasm).
    #[arg(long, default_value = "amd64")]
    arch: String,
    /// Config os (linux, or e.g. wasip1 / wasip2 / wasi).
    #[arg(long, default_value = "linux")]
    os: String,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oci-pack: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Rootfs {
            common,
            platform,
            entrypoint,
        } => {
            let data = read(&common.wasm)?;
            let opts = opts(&common, &platform)?;
            write(&common, image::rootfs(&data, &entrypoint, &opts)?)
        }
        Cmd::Layer {
            common,
            platform,
            media_type,
            entrypoint,
        } => {
            let data = read(&common.wasm)?;
            let opts = opts(&common, &platform)?;
            write(
                &common,
                image::layer(&data, &media_type, &entrypoint, &opts)?,
            )
        }
        Cmd::Artifact { common, author } => {
            let data = read(&common.wasm)?;
            let file_name = common
                .wasm
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "app.wasm".to_string());
            let created = created(common.created.as_deref())?;
            write(
                &common,
                image::artifact(&data, &file_name, author, created)?,
            )
        }
        Cmd::Inspect { wasm } => inspect(&wasm),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn opts(common: &Common, platform: &Platform) -> Result<ImageOpts> {
    Ok(ImageOpts {
        arch: platform.arch.clone(),
        os: platform.os.clone(),
        created: created(common.created.as_deref())?,
    })
}

fn created(flag: Option<&str>) -> Result<DateTime<Utc>> {
    if let Some(s) = flag {
        return Ok(DateTime::parse_from_rfc3339(s)
            .with_context(|| format!("--created {s:?} is not RFC 3339"))?
            .to_utc());
    }
    let secs = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => s
            .trim()
            .parse::<i64>()
            .with_context(|| format!("SOURCE_DATE_EPOCH={s:?} is not a number"))?,
        Err(_) => 0,
    };
    match DateTime::from_timestamp(secs, 0) {
        Some(t) => Ok(t),
        None => bail!("SOURCE_DATE_EPOCH={secs} is out of range"),
    }
}

fn write(common: &Common, packed: Packed) -> Result<()> {
    packed
        .layout
        .write_archive(&packed.manifest, &common.name, &common.out)?;
    println!("{}", packed.manifest.digest());
    Ok(())
}

fn inspect(path: &Path) -> Result<()> {
    let data = read(path)?;
    let kind = Kind::of(&data);
    let mut out = serde_json::json!({
        "file": path.display().to_string(),
        "kind": kind.as_str(),
        "size": data.len(),
        "digest": oci_pack::sha256_digest(&data),
        "magic": magic_hex(&data),
    });
    if kind == Kind::Component {
        out["component"] = serde_json::to_value(describe_component(&data)?)?;
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

//! `gradlake sql`: one-shot queries and the interactive shell.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use gradlake_pipeline::memory::parse_size;
use gradlake_pipeline::store::LakeLocation;
use gradlake_pipeline::{LakeSession, SessionOptions};
use gradlake_queries::{OutputFormat, params, run_statements};

/// Arguments of `gradlake sql`.
#[derive(clap::Args)]
pub struct SqlArgs {
    /// SQL to run (`;`-separated statements). Without it (and without --file), an interactive shell.
    query: Option<String>,
    /// Run the SQL script in FILE (e.g. one of `queries/sql/*.sql`).
    #[arg(long, short = 'f', conflicts_with = "query")]
    file: Option<PathBuf>,
    /// Set a script parameter declared as `-- param NAME = DEFAULT` and used as `$NAME` (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// The lake whose tables and views to register. Without it only files named
    /// in the query are visible (`SELECT ... FROM 'file.parquet'`).
    #[arg(long)]
    lake: Option<String>,
    /// Output format: table, csv, json or parquet.
    #[arg(long, default_value = "table", value_parser = |s: &str| s.parse::<OutputFormat>())]
    format: OutputFormat,
    /// Write results to FILE instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Memory the query may use (e.g. 512M); operators spill to disk beyond it.
    #[arg(long)]
    memory_limit: Option<String>,
    /// Directory for spill files.
    #[arg(long)]
    temp_dir: Option<PathBuf>,
    /// Query the lake without its damaged files (each is named on stderr) instead of refusing it.
    #[arg(long)]
    skip_bad_files: bool,
    #[command(flatten)]
    cluster: crate::cluster_args::ClusterArgs,
    /// Rows shown by the table format before it stops the query.
    #[arg(long, default_value_t = 1000)]
    max_rows: usize,
}

pub fn run(args: SqlArgs) -> anyhow::Result<ExitCode> {
    let options = SessionOptions {
        memory_limit: args.memory_limit.as_deref().map(parse_size).transpose().context("--memory-limit")?,
        temp_dir: args.temp_dir.clone(),
        target_partitions: None,
        skip_bad_files: args.skip_bad_files,
        cluster: args.cluster.cluster()?,
        element_wise_aggregation: false,
    };
    if args.format == OutputFormat::Parquet && args.output.is_none() && std::io::stdout().is_terminal() {
        bail!("--format parquet writes binary data: give --output FILE or pipe stdout");
    }
    let script = match &args.file {
        Some(path) => Some(std::fs::read_to_string(path).with_context(|| format!("--file {}", path.display()))?),
        None => args.query.clone(),
    };
    let script = match script {
        Some(sql) => Some(params::bind(&sql, &args.params).context("--param")?),
        None if !args.params.is_empty() => bail!("--param needs a query or --file"),
        None => None,
    };
    let rt = crate::runtime()?;
    rt.block_on(async {
        let session = open(args.lake.as_deref(), &options).await?;
        for w in session.warnings() {
            eprintln!("{w}");
        }
        match &script {
            Some(sql) => {
                let mut out: Box<dyn Write + Send> = match &args.output {
                    Some(path) => Box::new(BufWriter::new(
                        File::create(path).with_context(|| format!("--output {}", path.display()))?,
                    )),
                    None => Box::new(BufWriter::new(std::io::stdout())),
                };
                let summary = run_statements(session.context(), sql, args.format, &mut out, args.max_rows).await?;
                out.flush()?;
                if summary.truncated {
                    eprintln!(
                        "output truncated at {} rows (use --max-rows, or --format csv|json|parquet for all rows)",
                        args.max_rows
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            None => shell(&session, args.format, args.max_rows).await,
        }
    })
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    params::parse_assignment(s).map_err(|e| e.to_string())
}

async fn open(lake: Option<&str>, options: &SessionOptions) -> anyhow::Result<LakeSession> {
    Ok(match lake {
        Some(lake) => LakeSession::open_location(&LakeLocation::parse(lake).context("--lake")?, options).await?,
        None => LakeSession::new(options)?,
    })
}

/// A line-editing shell with history. Statements end with `;`.
async fn shell(session: &LakeSession, format: OutputFormat, max_rows: usize) -> anyhow::Result<ExitCode> {
    use rustyline::error::ReadlineError;
    let mut editor = rustyline::DefaultEditor::new()?;
    let history = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".gradlake_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    if std::io::stdin().is_terminal() {
        eprintln!(
            "gradlake sql shell: end statements with ';'. \\d lists tables, \\f gradlake's functions, \\q quits."
        );
    }
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() { "gradlake> " } else { "      ..> " };
        match editor.readline(prompt) {
            Ok(line) => {
                let trimmed = line.trim();
                if buffer.is_empty() {
                    match trimmed {
                        "" => continue,
                        "\\q" | "quit" | "exit" => break,
                        "\\d" => {
                            let _ = editor.add_history_entry(trimmed);
                            execute(session, "SHOW TABLES;", format, max_rows).await;
                            continue;
                        }
                        "\\f" => {
                            let _ = editor.add_history_entry(trimmed);
                            execute(session, &functions_query(), format, max_rows).await;
                            continue;
                        }
                        _ => {}
                    }
                }
                buffer.push_str(&line);
                buffer.push('\n');
                if trimmed.ends_with(';') {
                    let _ = editor.add_history_entry(buffer.trim());
                    execute(session, &buffer, format, max_rows).await;
                    buffer.clear();
                }
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(ExitCode::SUCCESS)
}

/// gradlake's SQL functions, one line each: name, syntax and the first
/// sentence of the description they carry (`information_schema.routines`).
fn functions_query() -> String {
    let names: Vec<String> = gradlake_pipeline::udf::aggregates()
        .iter()
        .map(|f| f.name().to_string())
        .chain(gradlake_pipeline::udf::scalars().iter().map(|f| f.name().to_string()))
        .map(|n| format!("'{n}'"))
        .collect();
    format!(
        "SELECT syntax_example AS function, split_part(description, '. ', 1) AS what \
         FROM information_schema.routines WHERE routine_name IN ({}) ORDER BY routine_name;",
        names.join(", ")
    )
}

/// Runs statements in the shell: an error is reported and the shell goes on.
async fn execute(session: &LakeSession, sql: &str, format: OutputFormat, max_rows: usize) {
    let mut out = std::io::BufWriter::new(std::io::stdout());
    match run_statements(session.context(), sql, format, &mut out, max_rows).await {
        Ok(s) if s.truncated => eprintln!("(output truncated at {max_rows} rows)"),
        Ok(_) => {}
        Err(e) => eprintln!("error: {e}"),
    }
}

//! `rollgate metrics`: list Flagger's built-in metrics per mesh, and render one query
//! exactly as Flagger sends it to Prometheus.

use anyhow::Context as _;

use super::{Exit, OutputFormat, UsageError};
use crate::core::metrics::{BuiltinName, MESHES, Observer, TemplateModel};

/// Subcommands of `rollgate metrics`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List the meshes and ingresses with their built-in metrics and query templates.
    List(ListArgs),
    /// Render one built-in query for a canary, exactly as Flagger sends it.
    Render(RenderArgs),
}

/// `rollgate metrics list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// `rollgate metrics render`.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// Mesh or ingress (Flagger's `spec.provider`): istio, linkerd, nginx, contour,
    /// traefik, gatewayapi:v1, kubernetes, appmesh, gloo, skipper, osm, kuma, apisix,
    /// knative.
    #[arg(long)]
    pub mesh: String,
    /// `request-success-rate` or `request-duration`.
    #[arg(long)]
    pub metric: String,
    /// Namespace of the canary.
    #[arg(long)]
    pub namespace: String,
    /// Target workload (`targetRef.name`).
    #[arg(long)]
    pub target: String,
    /// Rate window (`{{ interval }}`).
    #[arg(long, default_value = "1m")]
    pub interval: String,
    /// Service name (default: the target).
    #[arg(long)]
    pub service: Option<String>,
    /// Ingress name (default: the target).
    #[arg(long)]
    pub ingress: Option<String>,
    /// Route name (default: the target; Knative: the revision).
    #[arg(long)]
    pub route: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// Run `rollgate metrics`.
///
/// # Errors
/// A [`UsageError`] for an unknown mesh or metric name.
pub async fn run(command: Command) -> anyhow::Result<Exit> {
    match command {
        Command::List(a) => list(&a),
        Command::Render(a) => render(&a),
    }
}

fn list(args: &ListArgs) -> anyhow::Result<Exit> {
    match args.output {
        OutputFormat::Text => {
            let mut out = String::new();
            for (mesh, observer) in MESHES {
                for name in BuiltinName::ALL {
                    out.push_str(&format!(
                        "{mesh}\t{name}\t{unit}\t{query}\n",
                        unit = name.unit(),
                        query = observer.template(name).trim()
                    ));
                }
            }
            print!("{out}");
        }
        OutputFormat::Json => {
            let items: Vec<_> = MESHES
                .iter()
                .flat_map(|(mesh, observer)| {
                    BuiltinName::ALL.into_iter().map(move |name| {
                        serde_json::json!({
                            "mesh": mesh,
                            "observer": observer.as_str(),
                            "metric": name.as_str(),
                            "unit": name.unit(),
                            "template": observer.template(name),
                        })
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&items)?);
        }
    }
    Ok(Exit::Successful)
}

fn render(args: &RenderArgs) -> anyhow::Result<Exit> {
    let name = BuiltinName::parse(&args.metric).ok_or_else(|| {
        UsageError(format!(
            "--metric {:?}: not a built-in metric (request-success-rate, request-duration)",
            args.metric
        ))
    })?;
    let observer = Observer::for_provider(&args.mesh).ok_or_else(|| {
        UsageError(format!(
            "--mesh {:?}: unknown mesh; use one of {}",
            args.mesh,
            MESHES
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let mut model = TemplateModel::new(&args.namespace, &args.target);
    model.interval.clone_from(&args.interval);
    if let Some(s) = &args.service {
        model.service.clone_from(s);
    }
    if let Some(s) = &args.ingress {
        model.ingress.clone_from(s);
    }
    if let Some(s) = &args.route {
        model.route.clone_from(s);
    }
    let query = observer
        .render(name, &model)
        .context("rendering the built-in query")?;
    match args.output {
        OutputFormat::Text => println!("{query}"),
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "mesh": args.mesh,
                "observer": observer.as_str(),
                "metric": name.as_str(),
                "unit": name.unit(),
                "query": query,
            }))?
        ),
    }
    Ok(Exit::Successful)
}

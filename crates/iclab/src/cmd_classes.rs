//! `iclab classes`: the catalogue of function classes and prompt strategies.

use iclab_core::{ClassSpec, PromptStrategy};

#[derive(clap::Args)]
pub struct Args {
    /// Dimension at which E[y^2] is shown.
    #[arg(long, default_value_t = 20, value_parser = crate::at_least_one)]
    d: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    println!("Function classes (E[y^2] at d = {}, isotropic inputs):\n", args.d);
    println!("{:<58} {:>8}  description", "class (defaults)", "E[y^2]");
    for (spec, about) in ClassSpec::catalogue() {
        println!("{:<58} {:>8.3}  {}", spec.name(), spec.expected_y2(args.d), about);
        let toml = toml::to_string(&spec)?;
        let inline = toml
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        println!("{:<58} {:>8}  toml: {}", "", "", inline);
    }
    println!("\nPrompt strategies (`inputs`):\n");
    for s in PromptStrategy::catalogue() {
        println!(
            "  {:<24} toml: {}",
            s.name(),
            toml::to_string(&s)?.trim().replace('\n', "; ")
        );
    }
    Ok(())
}

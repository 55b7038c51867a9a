//! The crate graph keeps its shape: gateway → procedures → persistence → domain, never back.

use cargo_metadata::MetadataCommand;

/// Each Tidings crate and the Tidings crates it may depend on (normal dependencies).
const ALLOWED: &[(&str, &[&str])] = &[
    ("tidings-domain", &[]),
    ("tidings-migration", &[]),
    (
        "tidings-persistence",
        &["tidings-domain", "tidings-migration"],
    ),
    (
        "tidings-procedures",
        &["tidings-domain", "tidings-persistence"],
    ),
    (
        "tidings-gateway",
        &[
            "tidings-domain",
            "tidings-persistence",
            "tidings-procedures",
        ],
    ),
];

#[test]
fn dependencies_point_one_way() {
    let metadata = MetadataCommand::new()
        .manifest_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"))
        .no_deps()
        .exec()
        .expect("cargo metadata");
    for (name, allowed) in ALLOWED {
        let package = metadata
            .packages
            .iter()
            .find(|p| p.name.as_str() == *name)
            .unwrap_or_else(|| panic!("{name} is a workspace member"));
        let internal: Vec<&str> = package
            .dependencies
            .iter()
            .filter(|d| d.kind == cargo_metadata::DependencyKind::Normal)
            .map(|d| d.name.as_str())
            .filter(|d| d.starts_with("tidings-"))
            .collect();
        for dep in &internal {
            assert!(allowed.contains(dep), "{name} must not depend on {dep}");
        }
    }
}

#[test]
fn only_persistence_and_migration_speak_to_the_database() {
    let metadata = MetadataCommand::new()
        .manifest_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"))
        .no_deps()
        .exec()
        .expect("cargo metadata");
    for package in &metadata.packages {
        let name = package.name.as_str();
        if [
            "tidings-persistence",
            "tidings-migration",
            "tidings-tests",
            "xtask",
        ]
        .contains(&name)
        {
            continue;
        }
        let normal = package
            .dependencies
            .iter()
            .filter(|d| d.kind == cargo_metadata::DependencyKind::Normal);
        for dep in normal {
            assert!(
                !dep.name.starts_with("sea-orm") && !dep.name.starts_with("sqlx"),
                "{name} depends on {} directly; database access belongs in tidings-persistence",
                dep.name
            );
        }
    }
}

//! Rebuild when a migration changes: `sqlx::migrate!` embeds the files at compile time, and
//! cargo does not otherwise know of them (a stale binary refuses a store migrated by a newer
//! one: "migration N was previously applied but has been modified").

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

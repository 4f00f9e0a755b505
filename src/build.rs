//! Build script: rebuild when a migration is added, since `sqlx::migrate!` embeds the folder.

fn main() {
    println!("cargo:rerun-if-changed=src/store/migrations");
}

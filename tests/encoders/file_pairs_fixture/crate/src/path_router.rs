//! Router path_router implementation for storing and matching routes.

pub struct PathRouter {
    routes: Vec<String>,
}

impl PathRouter {
    pub fn insert(&mut self, path: &str) {
        self.routes.push(path.to_string());
    }

    pub fn matches(&self, path: &str) -> bool {
        self.routes.iter().any(|r| r == path)
    }
}

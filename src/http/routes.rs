//! One path, its methods: [`at`] registers a path's handlers as one resource, so any other method
//! is answered 405 problem+json with the `Allow` header listing the ones it has (RFC 9110 §15.5.6)
//! rather than falling through to 404. `HEAD` is answered wherever `GET` is (the request context
//! runs it as a GET and the connection sends no body).
use actix_web::dev::{AppService, HttpServiceFactory};
use actix_web::http::header::{HeaderValue, ALLOW};
use actix_web::{web, FromRequest, Handler, HttpResponse, Resource, Responder, ResponseError};

use crate::error::ApiError;

/// A resource being built; register it with `.service(...)`.
pub struct Routes {
    resource: Resource,
    allow: Vec<&'static str>,
}

/// The routes of `path`.
pub fn at(path: &str) -> Routes {
    Routes {
        resource: web::resource(path),
        allow: Vec::new(),
    }
}

macro_rules! method {
    ($name:ident, $method:literal) => {
        pub fn $name<F, Args>(mut self, handler: F) -> Self
        where
            F: Handler<Args>,
            Args: FromRequest + 'static,
            F::Output: Responder + 'static,
        {
            self.resource = self.resource.route(web::$name().to(handler));
            self.allow.push($method);
            self
        }
    };
}

impl Routes {
    method!(get, "GET");
    method!(post, "POST");
    method!(put, "PUT");
    method!(patch, "PATCH");
    method!(delete, "DELETE");

    /// The `Allow` value: the methods registered, with HEAD after GET.
    fn allow(&self) -> String {
        let mut methods = Vec::with_capacity(self.allow.len() + 1);
        for m in &self.allow {
            methods.push(*m);
            if *m == "GET" {
                methods.push("HEAD");
            }
        }
        methods.join(", ")
    }
}

impl HttpServiceFactory for Routes {
    fn register(self, config: &mut AppService) {
        let allow = self.allow();
        self.resource
            .default_service(web::to(move || {
                let allow = allow.clone();
                async move { method_not_allowed(&allow) }
            }))
            .register(config)
    }
}

fn method_not_allowed(allow: &str) -> HttpResponse {
    let mut response = ApiError::MethodNotAllowed.error_response();
    if let Ok(value) = HeaderValue::from_str(allow) {
        response.headers_mut().insert(ALLOW, value);
    }
    response
}

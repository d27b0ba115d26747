package server

import (
	"net/http"
	"strings"
)

// Router dispatches requests to handlers by matching URL path patterns.
type Router struct {
	routes []route
}

type route struct {
	method  string
	parts   []string
	handler http.HandlerFunc
}

// Handle registers a handler for a method and a path pattern such as /users/:id.
func (r *Router) Handle(method, pattern string, handler http.HandlerFunc) {
	r.routes = append(r.routes, route{method, strings.Split(strings.Trim(pattern, "/"), "/"), handler})
}

// match reports whether the request path fits the pattern, collecting :params.
func match(parts []string, path string) (map[string]string, bool) {
	segments := strings.Split(strings.Trim(path, "/"), "/")
	if len(segments) != len(parts) {
		return nil, false
	}
	params := map[string]string{}
	for i, part := range parts {
		if strings.HasPrefix(part, ":") {
			params[part[1:]] = segments[i]
		} else if part != segments[i] {
			return nil, false
		}
	}
	return params, true
}

// ServeHTTP finds the first route matching the URL path and calls its handler.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	for _, rt := range r.routes {
		if rt.method != req.Method {
			continue
		}
		if _, ok := match(rt.parts, req.URL.Path); ok {
			rt.handler(w, req)
			return
		}
	}
	http.NotFound(w, req)
}

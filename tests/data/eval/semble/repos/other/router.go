package other

// Router dispatches requests to handlers by path.
type Router struct {
	routes map[string]func()
}

// Handle registers a handler for a path.
func (r *Router) Handle(path string, handler func()) {
	r.routes[path] = handler
}

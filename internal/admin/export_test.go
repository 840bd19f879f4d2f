package admin

// Internals exposed to the external tests (package admin_test).
const (
	MaxBody     = maxBody
	MaxPassword = maxPassword
)

// RouteList returns "METHOD /path" for every authenticated route served.
func RouteList() []string {
	out := make([]string, 0, len(routes))
	for _, rt := range routes {
		out = append(out, rt.method+" "+rt.path)
	}
	return out
}

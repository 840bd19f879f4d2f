// Command gatehouse is the single Gatehouse binary: identity provider and
// (later) gateway, authorization service and workload CA. The commands live
// in internal/cli; this main only runs them.
package main

import (
	"os"

	"github.com/gatehouse/gatehouse/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Environ()))
}

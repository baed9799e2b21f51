// Command payhookctl is the operator's command line for payhook: subscribers,
// dead letters and watches, on the services' config file. See
// docs/operations.md for a cookbook.
package main

import (
	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/internal/ctl"
)

func main() { cli.Main(ctl.Run) }

// Command dispatcher delivers payhook events to subscribers; see
// internal/dispatch and docs/dispatcher.md.
package main

import (
	"github.com/payhook/payhook/internal/cli"
	"github.com/payhook/payhook/internal/dispatch"
)

func main() { cli.Main(dispatch.Main) }

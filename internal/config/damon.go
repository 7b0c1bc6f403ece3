package config

// Damon configures the Damon master-socket protocol (raw TCP and WebSocket).
// Owned by the Damon front-end; see docs/configuration.md.
type Damon struct {
	Enabled *bool `yaml:"enabled"`
}

func (d *Damon) applyDefaults() {
	if d.Enabled == nil {
		d.Enabled = boolPtr(true)
	}
}

func (d *Damon) validate() []string { return nil }

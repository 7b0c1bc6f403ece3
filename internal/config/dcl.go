package config

// DCL configures the Decentraland comms ws-room transport.
// Owned by the ws-room front-end; see docs/configuration.md.
type DCL struct {
	Enabled *bool `yaml:"enabled"`
}

func (d *DCL) applyDefaults() {
	if d.Enabled == nil {
		d.Enabled = boolPtr(true)
	}
}

func (d *DCL) validate() []string { return nil }

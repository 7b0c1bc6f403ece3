package redisengine

import (
	_ "embed"

	"github.com/redis/rueidis"
)

// The scripts run with EVALSHA (falling back to EVAL once per server, which
// also covers a restarted Redis that lost its script cache). Each one
// changes a node's contribution and the aggregate in one atomic step.
var (
	//go:embed lua/occupancy.lua
	occupancySrc string
	//go:embed lua/presence_add.lua
	presenceAddSrc string
	//go:embed lua/presence_remove.lua
	presenceRemoveSrc string
	//go:embed lua/user_online.lua
	userOnlineSrc string
	//go:embed lua/user_offline.lua
	userOfflineSrc string
	//go:embed lua/claim.lua
	claimSrc string
	//go:embed lua/release.lua
	releaseSrc string
	//go:embed lua/register.lua
	registerSrc string
	//go:embed lua/heartbeat.lua
	heartbeatSrc string
	//go:embed lua/reap_scan.lua
	reapScanSrc string
	//go:embed lua/reap_begin.lua
	reapBeginSrc string
	//go:embed lua/reap_end.lua
	reapEndSrc string
)

type scripts struct {
	occupancy, presenceAdd, presenceRemove, userOnline, userOffline   *rueidis.Lua
	claim, release, register, heartbeat, reapScan, reapBegin, reapEnd *rueidis.Lua
}

func newScripts() *scripts {
	return &scripts{
		occupancy:      rueidis.NewLuaScript(occupancySrc),
		presenceAdd:    rueidis.NewLuaScript(presenceAddSrc),
		presenceRemove: rueidis.NewLuaScript(presenceRemoveSrc),
		userOnline:     rueidis.NewLuaScript(userOnlineSrc),
		userOffline:    rueidis.NewLuaScript(userOfflineSrc),
		claim:          rueidis.NewLuaScript(claimSrc),
		release:        rueidis.NewLuaScript(releaseSrc),
		register:       rueidis.NewLuaScript(registerSrc),
		heartbeat:      rueidis.NewLuaScript(heartbeatSrc),
		reapScan:       rueidis.NewLuaScript(reapScanSrc),
		reapBegin:      rueidis.NewLuaScript(reapBeginSrc),
		reapEnd:        rueidis.NewLuaScript(reapEndSrc),
	}
}

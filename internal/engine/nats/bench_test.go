package natsengine

import (
	"context"
	"testing"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

// chanLocal hands deliveries to a channel.
type chanLocal struct {
	nopLocal
	got chan engine.Publication
}

func (c *chanLocal) DeliverLocal(p engine.Publication) { c.got <- p }

// BenchmarkCrossNodePublish is one publication on node 0 until node 1's hub
// has it (embedded, three routed nodes on loopback): the cross-node
// delivery latency, one at a time.
//
//	go test -run '^$' -bench CrossNodePublish -benchtime 2000x ./internal/engine/nats/
func BenchmarkCrossNodePublish(b *testing.B) {
	opts, err := freeAddrs(3)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	p, err := startCluster(3, func(i int) Options {
		return Options{NodeName: "b" + string(rune('0'+i)), Embedded: true, Listen: opts[i], Routes: opts,
			StoreDir: dir + "/" + string(rune('0'+i)), Logger: quietLogger()}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer p.close()
	rx := &chanLocal{got: make(chan engine.Publication, 1)}
	p.fwd[1].set(rx)
	ctx := context.Background()
	if err := p.engines[1].Interest(ctx, "b", "ch", true); err != nil {
		b.Fatal(err)
	}
	pub := engine.Publication{Namespace: "b", Channel: "ch", Payload: make([]byte, 200)}
	b.ResetTimer()
	for b.Loop() {
		if err := p.engines[0].Publish(ctx, pub); err != nil {
			b.Fatal(err)
		}
		<-rx.got
	}
}

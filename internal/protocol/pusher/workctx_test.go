package pusher

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWorkCtxCancelReachesWaitersAndChildren(t *testing.T) {
	var w workCtx
	if w.Err() != nil {
		t.Fatal("Err before cancel")
	}
	done := w.Done()
	child, stop := context.WithTimeout(&w, time.Hour)
	defer stop()
	select {
	case <-done:
		t.Fatal("done before cancel")
	default:
	}
	w.cancel()
	w.cancel() // a second cancel must not close twice
	<-done
	<-child.Done()
	if !errors.Is(w.Err(), context.Canceled) || !errors.Is(child.Err(), context.Canceled) {
		t.Fatalf("Err %v, child %v", w.Err(), child.Err())
	}

	var late workCtx
	late.cancel()
	<-late.Done() // made after the cancel: already closed
}

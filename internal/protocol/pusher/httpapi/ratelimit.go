package httpapi

import (
	"net/http"
	"strconv"

	"github.com/switchboard-rt/switchboard/internal/protocol/pusher"
	"github.com/switchboard-rt/switchboard/internal/ratelimit"
)

// overRate takes one request from the app's bucket, or answers 429 with
// Retry-After. It runs after the signature check, so that nobody without
// the app's secret can spend the app's budget, and before the endpoint
// does any work. Batches count as one request, as on Pusher. Cost: about
// 110 ns per request (BenchmarkAllowWarmKey in internal/ratelimit).
func (a *API) overRate(w http.ResponseWriter, app *pusher.App) *apiError {
	ok, wait := a.rate.Allow(app.ID)
	if ok {
		return nil
	}
	if a.metrics != nil {
		a.metrics.APIRateLimited(app.ID)
	}
	// Debug only: a flood calls this for every request.
	a.log.Debug("http api request refused: app over limits.api_rate", "app", app.ID)
	secs := ratelimit.RetryAfterSeconds(wait)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	r := a.rate.Rate()
	return errorf(http.StatusTooManyRequests, "too many requests for app %s: the limit is %g per second (burst %d) on this node; retry in %d s",
		app.ID, r.PerSecond, max(r.Burst, 1), secs)
}

package authchain_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain/authchaintest"
)

const contractWallet = "0x00000000000000000000000000000000c0ffee00"

// magicWord is isValidSignature's ABI-encoded "yes": bytes4 0x1626ba7e, left-aligned.
var magicWord = "0x1626ba7e" + strings.Repeat("0", 56)

// fakeNode is an Ethereum JSON-RPC endpoint with one contract wallet that
// accepts exactly one (hash, signature) pair. It checks the eth_call request
// the way a node would read it.
type fakeNode struct {
	t        *testing.T
	validFor []byte // hash the wallet accepts
	sig      []byte // signature the wallet accepts
	mode     string // "", "revert", "rpc-error", "http-500", "echo", "eoa", "junk", "huge", "slow", "wrong-id"
	calls    atomic.Int32
}

func (n *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.calls.Add(1)
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		n.t.Errorf("request %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
	}
	var req struct {
		JSONRPC string            `json:"jsonrpc"`
		ID      json.RawMessage   `json:"id"`
		Method  string            `json:"method"`
		Params  []json.RawMessage `json:"params"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		n.t.Errorf("bad request body: %v", err)
		return
	}
	var call struct{ To, Data string }
	var block string
	if req.JSONRPC != "2.0" || req.Method != "eth_call" || len(req.Params) != 2 ||
		json.Unmarshal(req.Params[0], &call) != nil || json.Unmarshal(req.Params[1], &block) != nil || block != "latest" {
		n.t.Errorf("unexpected request %+v", req)
		return
	}
	data, err := hex.DecodeString(strings.TrimPrefix(call.Data, "0x"))
	if err != nil || len(data) < 4+96 || (len(data)-4)%32 != 0 {
		n.t.Errorf("calldata %q is not ABI-encoded", call.Data)
		return
	}
	// isValidSignature(bytes32 hash, bytes sig): selector, hash, offset 0x40, length, bytes.
	selector, hash := data[:4], data[4:36]
	offset := binary.BigEndian.Uint64(data[36+24 : 68])
	length := binary.BigEndian.Uint64(data[68+24 : 100])
	if hex.EncodeToString(selector) != "1626ba7e" || offset != 0x40 || uint64(len(data)-100) < length {
		n.t.Errorf("calldata %x does not call isValidSignature(bytes32,bytes)", data)
		return
	}
	sig := data[100 : 100+length]
	if !bytes.Equal(data[100+length:], make([]byte, len(data)-100-int(length))) {
		n.t.Errorf("signature padding is not zero")
	}

	result := "0x" + strings.Repeat("00", 32)
	if call.To == contractWallet && bytes.Equal(hash, n.validFor) && bytes.Equal(sig, n.sig) {
		result = magicWord
	}
	w.Header().Set("Content-Type", "application/json")
	switch n.mode {
	case "revert":
		_, _ = fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":3,"message":"execution reverted","data":"0x"}}`, req.ID)
	case "rpc-error":
		_, _ = fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32005,"message":"rate limited"}}`, req.ID)
	case "http-500":
		http.Error(w, "upstream down", http.StatusInternalServerError)
	case "echo": // a contract whose fallback returns its calldata
		_, _ = fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":%q}`, req.ID, call.Data)
	case "eoa": // no code at the address
		_, _ = fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":"0x"}`, req.ID)
	case "junk":
		_, _ = fmt.Fprint(w, `<html>not json</html>`)
	case "huge":
		_, _ = fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":"0x%s"}`, req.ID, strings.Repeat("00", 64*1024))
	case "wrong-id":
		_, _ = fmt.Fprintf(w, `{"jsonrpc":"2.0","id":2,"result":%q}`, result)
	case "slow":
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	default:
		_, _ = fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":%q}`, req.ID, result)
	}
}

func newFakeNode(t *testing.T, n *fakeNode) *authchain.JSONRPCVerifier {
	t.Helper()
	n.t = t
	srv := httptest.NewServer(n)
	t.Cleanup(srv.Close)
	v, err := authchain.NewJSONRPCVerifier(authchain.JSONRPCConfig{URL: srv.URL, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestJSONRPCVerifierAnswers(t *testing.T) {
	hash := authchain.Keccak256([]byte("hello"))
	sig := bytes.Repeat([]byte{0xab}, 130) // two owners of a multisig, say
	cases := []struct {
		name    string
		mode    string
		hash    []byte
		want    bool
		wantErr bool
	}{
		{name: "valid", hash: hash, want: true},
		{name: "other hash", hash: authchain.Keccak256([]byte("other")), want: false},
		{name: "revert is a no", mode: "revert", hash: hash, want: false},
		{name: "no code at the address", mode: "eoa", hash: hash, want: false},
		{name: "calldata echo is a no", mode: "echo", hash: hash, want: false},
		{name: "RPC error", mode: "rpc-error", hash: hash, wantErr: true},
		{name: "HTTP 500", mode: "http-500", hash: hash, wantErr: true},
		{name: "not JSON", mode: "junk", hash: hash, wantErr: true},
		{name: "response over the size limit", mode: "huge", hash: hash, wantErr: true},
		{name: "response to another request", mode: "wrong-id", hash: hash, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newFakeNode(t, &fakeNode{validFor: hash, sig: sig, mode: tc.mode})
			ok, err := v.VerifyEIP1654(context.Background(), contractWallet, tc.hash, sig)
			if (err != nil) != tc.wantErr || ok != tc.want {
				t.Fatalf("VerifyEIP1654 = %v, %v; want %v, error %v", ok, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestJSONRPCVerifierRejectsBadArguments(t *testing.T) {
	v := newFakeNode(t, &fakeNode{})
	if _, err := v.VerifyEIP1654(context.Background(), "0x1234", make([]byte, 32), []byte{1}); err == nil {
		t.Fatal("short address accepted")
	}
	if _, err := v.VerifyEIP1654(context.Background(), contractWallet, make([]byte, 31), []byte{1}); err == nil {
		t.Fatal("31-byte hash accepted")
	}
	for _, u := range []string{"", "localhost:8545", "ftp://node", "http://"} {
		if _, err := authchain.NewJSONRPCVerifier(authchain.JSONRPCConfig{URL: u}); err == nil {
			t.Errorf("URL %q accepted", u)
		}
	}
}

// A contract wallet owner delegates to an EOA ephemeral key (the
// ECDSA_EIP_1654_EPHEMERAL link of a real chain). Like @dcl/crypto, the
// wallet is asked about keccak256(message) first, then about the
// personal_sign hash; this wallet only knows the second.
func TestVerifyContractWalletChain(t *testing.T) {
	eph := newIdentity(t)
	msg := authchaintest.EphemeralMessage(eph.Address, testNow.Add(time.Hour))
	walletSig := bytes.Repeat([]byte{0x5a}, 97)
	node := &fakeNode{validFor: authchain.PersonalMessageHash(msg), sig: walletSig}
	v := newFakeNode(t, node)
	chain := authchain.Chain{
		{Type: authchain.TypeSigner, Payload: contractWallet},
		{Type: authchain.TypeEIP1654Ephemeral, Payload: msg, Signature: "0x" + hex.EncodeToString(walletSig)},
		{Type: authchain.TypeEcdsaSignedEntity, Payload: challenge, Signature: eph.SignPersonal(challenge)},
	}
	owner, err := verify(chain, contractWallet, authchain.Options{Contracts: v})
	if err != nil || owner != contractWallet {
		t.Fatalf("Verify = %q, %v", owner, err)
	}
	if got := node.calls.Load(); got != 2 {
		t.Fatalf("%d eth_calls, want 2 (plain hash, then personal hash)", got)
	}

	// Expired before any RPC.
	node.calls.Store(0)
	chain[1].Payload = authchaintest.EphemeralMessage(eph.Address, testNow.Add(-time.Hour))
	if _, err := verify(chain, contractWallet, authchain.Options{Contracts: v}); authchain.Reason(err) != "expired" {
		t.Fatalf("expired delegation: %v", err)
	}
	if node.calls.Load() != 0 {
		t.Fatal("expired delegation reached the RPC")
	}
}

func TestVerifyContractWalletSignedEntity(t *testing.T) {
	walletSig := []byte{1, 2, 3}
	node := &fakeNode{validFor: authchain.Keccak256([]byte(challenge)), sig: walletSig}
	v := newFakeNode(t, node)
	chain := authchain.Chain{
		{Type: authchain.TypeSigner, Payload: contractWallet},
		{Type: authchain.TypeEIP1654SignedEntity, Payload: challenge, Signature: "0x010203"},
	}
	if _, err := verify(chain, contractWallet, authchain.Options{Contracts: v}); err != nil {
		t.Fatal(err)
	}
	if node.calls.Load() != 1 {
		t.Fatalf("%d eth_calls, want 1 (the plain hash matched)", node.calls.Load())
	}

	chain[1].Signature = "0x010204"
	if _, err := verify(chain, contractWallet, authchain.Options{Contracts: v}); authchain.Reason(err) != "bad_signature" {
		t.Fatalf("rejected by the wallet: %v", err)
	}
	chain[1].Signature = "010203"
	if _, err := verify(chain, contractWallet, authchain.Options{Contracts: v}); authchain.Reason(err) != "malformed" {
		t.Fatalf("unprefixed hex: %v", err)
	}

	node.mode = "http-500"
	chain[1].Signature = "0x010203"
	_, err := verify(chain, contractWallet, authchain.Options{Contracts: v})
	if authchain.Reason(err) != "eip1654_error" || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("RPC down: %v", err)
	}
}

// A canceled handshake stops the RPC at once and does not try the second hash.
func TestVerifyContractWalletHonoursContext(t *testing.T) {
	node := &fakeNode{mode: "slow"}
	v := newFakeNode(t, node)
	chain := authchain.Chain{
		{Type: authchain.TypeSigner, Payload: contractWallet},
		{Type: authchain.TypeEIP1654SignedEntity, Payload: challenge, Signature: "0x01"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := authchain.Verify(ctx, authchaintest.JSON(chain), contractWallet, challenge, testNow, authchain.Options{Contracts: v})
	if authchain.Reason(err) != "eip1654_error" {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
	if node.calls.Load() != 1 {
		t.Fatalf("%d calls after the deadline, want 1", node.calls.Load())
	}
}

// A ContractVerifier that is not a JSON-RPC one, to test the retry logic alone.
type scriptedVerifier struct {
	answers []bool
	errs    []error
	hashes  [][]byte
}

func (s *scriptedVerifier) VerifyEIP1654(_ context.Context, _ string, hash, _ []byte) (bool, error) {
	i := len(s.hashes)
	s.hashes = append(s.hashes, hash)
	return s.answers[i], s.errs[i]
}

func TestContractCheckTriesBothHashes(t *testing.T) {
	chain := authchain.Chain{
		{Type: authchain.TypeSigner, Payload: contractWallet},
		{Type: authchain.TypeEIP1654SignedEntity, Payload: challenge, Signature: "0x01"},
	}
	// First call fails, second says yes: accepted.
	sv := &scriptedVerifier{answers: []bool{false, true}, errs: []error{fmt.Errorf("flaky"), nil}}
	if _, err := verify(chain, contractWallet, authchain.Options{Contracts: sv}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sv.hashes[0], authchain.Keccak256([]byte(challenge))) ||
		!bytes.Equal(sv.hashes[1], authchain.PersonalMessageHash(challenge)) {
		t.Fatal("hashes asked in the wrong order")
	}
	// First says no, second fails: an RPC error, not a bad signature.
	sv = &scriptedVerifier{answers: []bool{false, false}, errs: []error{nil, fmt.Errorf("down")}}
	if _, err := verify(chain, contractWallet, authchain.Options{Contracts: sv}); authchain.Reason(err) != "eip1654_error" {
		t.Fatalf("err = %v", err)
	}
}

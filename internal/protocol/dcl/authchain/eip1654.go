package authchain

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ContractVerifier checks a contract-wallet signature (EIP-1654, the draft of
// EIP-1271): does the contract at address accept signature for the 32-byte
// hash? false with a nil error means the contract said no (or reverted); an
// error means no answer could be had (network, RPC failure, canceled ctx).
//
// Implementations must be safe for concurrent use.
type ContractVerifier interface {
	VerifyEIP1654(ctx context.Context, address string, hash []byte, signature []byte) (bool, error)
}

// eip1654MagicValue is what isValidSignature returns for a valid signature.
// It is also the function's selector: bytes4(keccak256("isValidSignature(bytes32,bytes)")).
const eip1654MagicValue = "\x16\x26\xba\x7e"

// checkContractSignature verifies an EIP-1654 link the way @dcl/crypto does:
// ask the contract about keccak256(msg), then about the personal_sign hash of
// msg, and accept if either gets the magic value. Upstream then retries both
// at the block of "now" (a block dater); in a live handshake "now" is the
// latest block, so that retry is skipped.
func checkContractSignature(ctx context.Context, cv ContractVerifier, contract, msg, sigHex string) *Error {
	if cv == nil {
		return chainErr(ErrEIP1654Unavailable, "contract wallet %s", contract)
	}
	sig, err := decodeHexSignature(sigHex)
	if err != nil {
		return &Error{Kind: ErrMalformed, Link: -1, Cause: err}
	}
	var firstErr error
	for _, hash := range [2][]byte{Keccak256([]byte(msg)), PersonalMessageHash(msg)} {
		ok, err := cv.VerifyEIP1654(ctx, contract, hash, sig)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if ok {
			return nil
		}
	}
	if firstErr != nil {
		return &Error{Kind: ErrEIP1654Failed, Link: -1, Detail: "contract wallet " + contract, Cause: firstErr}
	}
	return chainErr(ErrBadSignature, "contract wallet %s rejects the signature", contract)
}

// JSONRPCConfig configures a JSONRPCVerifier.
type JSONRPCConfig struct {
	// URL of an Ethereum JSON-RPC endpoint (http or https), e.g. a node or a
	// provider; it must serve the chain the contract wallets live on.
	URL string
	// HTTPClient to use; nil means a client with Timeout (no shared default
	// client, so one slow RPC cannot be hidden behind a global setting).
	HTTPClient *http.Client
	// Timeout for each call when HTTPClient is nil; 0 means 5 s.
	Timeout time.Duration
	// BlockTag for eth_call; "" means "latest".
	BlockTag string
	// MaxResponseBytes bounds what is read from the RPC; 0 means 64 KiB.
	MaxResponseBytes int64
}

// JSONRPCVerifier is a ContractVerifier that calls isValidSignature(bytes32,bytes)
// with eth_call on an Ethereum JSON-RPC endpoint.
type JSONRPCVerifier struct {
	url      string
	client   *http.Client
	blockTag string
	maxBytes int64
}

// NewJSONRPCVerifier checks the configuration and returns a verifier.
func NewJSONRPCVerifier(cfg JSONRPCConfig) (*JSONRPCVerifier, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("authchain: Ethereum RPC URL %q: want an absolute http(s) URL", cfg.URL)
	}
	v := &JSONRPCVerifier{url: cfg.URL, client: cfg.HTTPClient, blockTag: cfg.BlockTag, maxBytes: cfg.MaxResponseBytes}
	if v.client == nil {
		timeout := cfg.Timeout
		if timeout <= 0 {
			timeout = 5 * time.Second
		}
		v.client = &http.Client{Timeout: timeout}
	}
	if v.blockTag == "" {
		v.blockTag = "latest"
	}
	if v.maxBytes <= 0 {
		v.maxBytes = 64 * 1024
	}
	return v, nil
}

type rpcRequest struct {
	JSONRPC string `json:"jsonrpc"`
	ID      int    `json:"id"`
	Method  string `json:"method"`
	Params  []any  `json:"params"`
}

type rpcCall struct {
	To   string `json:"to"`
	Data string `json:"data"`
}

type rpcResponse struct {
	ID     json.RawMessage `json:"id"`
	Result *string         `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// VerifyEIP1654 implements ContractVerifier.
//
// Only an exact ABI-encoded bytes4 result (the magic value and 28 zero bytes)
// counts as valid. A contract whose fallback echoes its calldata would also
// start its answer with the magic value (it is the selector); the exact
// length check refuses it. A revert is a "no", as upstream treats it.
func (v *JSONRPCVerifier) VerifyEIP1654(ctx context.Context, address string, hash, signature []byte) (bool, error) {
	if !IsAddress(address) {
		return false, fmt.Errorf("eth_call: invalid contract address %.64q", address)
	}
	if len(hash) != 32 {
		return false, fmt.Errorf("eth_call: hash is %d bytes, want 32", len(hash))
	}
	body, err := json.Marshal(rpcRequest{
		JSONRPC: "2.0",
		ID:      1,
		Method:  "eth_call",
		Params: []any{
			rpcCall{To: strings.ToLower(address), Data: "0x" + hex.EncodeToString(isValidSignatureCalldata(hash, signature))},
			v.blockTag,
		},
	})
	if err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("eth_call: %w", err)
	}
	defer func() { _ = resp.Body.Close() }() // read below; closing cannot change the answer
	raw, err := io.ReadAll(io.LimitReader(resp.Body, v.maxBytes+1))
	if err != nil {
		return false, fmt.Errorf("eth_call: reading response: %w", err)
	}
	if int64(len(raw)) > v.maxBytes {
		return false, fmt.Errorf("eth_call: response larger than %d bytes", v.maxBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("eth_call: HTTP %d", resp.StatusCode)
	}
	var rr rpcResponse
	if err := json.Unmarshal(raw, &rr); err != nil {
		return false, fmt.Errorf("eth_call: bad JSON-RPC response: %w", err)
	}
	if string(rr.ID) != "1" {
		return false, fmt.Errorf("eth_call: response id %.32s, want 1", rr.ID)
	}
	if rr.Error != nil {
		if isRevert(rr.Error.Code, rr.Error.Message) {
			return false, nil
		}
		return false, fmt.Errorf("eth_call: RPC error %d: %.200s", rr.Error.Code, rr.Error.Message)
	}
	if rr.Result == nil {
		return false, errors.New("eth_call: response has neither result nor error")
	}
	out, err := hex.DecodeString(strings.TrimPrefix(*rr.Result, "0x"))
	if err != nil {
		return false, fmt.Errorf("eth_call: result is not hex: %w", err)
	}
	return isMagicResult(out), nil
}

// isValidSignatureCalldata ABI-encodes isValidSignature(bytes32 hash, bytes sig):
// selector, the hash, the offset of the dynamic argument (0x40), its length,
// then its bytes right-padded to a 32-byte boundary.
func isValidSignatureCalldata(hash, sig []byte) []byte {
	padded := (len(sig) + 31) / 32 * 32
	data := make([]byte, 4+32+32+32+padded)
	copy(data, eip1654MagicValue)
	copy(data[4:], hash)
	binary.BigEndian.PutUint64(data[4+32+24:], 0x40)
	binary.BigEndian.PutUint64(data[4+64+24:], uint64(len(sig)))
	copy(data[4+96:], sig)
	return data
}

// isMagicResult: a bytes4 return value is left-aligned in one 32-byte word.
func isMagicResult(out []byte) bool {
	if len(out) != 32 || string(out[:4]) != eip1654MagicValue {
		return false
	}
	for _, b := range out[4:] {
		if b != 0 {
			return false
		}
	}
	return true
}

// isRevert recognises "the call reverted" answers: geth uses code 3 (with
// revert data) and older nodes -32000 with "execution reverted".
func isRevert(code int, msg string) bool {
	return code == 3 || strings.Contains(strings.ToLower(msg), "revert")
}

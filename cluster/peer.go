package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"distore/backend"
)

// rpcTimeout bounds one small internal request (claim, where, announce...).
const rpcTimeout = 5 * time.Second

// peers speaks the internal routes of other servers with net/http.
type peers struct {
	hc    *http.Client
	token string
}

func newPeers(hc *http.Client, token string) *peers {
	if hc == nil {
		tr := &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			WriteBufferSize:       256 << 10,
			ReadBufferSize:        256 << 10,
		}
		hc = &http.Client{Transport: tr}
	}
	return &peers{hc: hc, token: token}
}

func (p *peers) url(addr, path string, q url.Values) string {
	u := "http://" + addr + RoutePrefix + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

func (p *peers) newReq(ctx context.Context, method, addr, path string, q url.Values, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.url(addr, path, q), body)
	if err != nil {
		return nil, err
	}
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	return req, nil
}

// call sends a small JSON request and decodes a JSON answer into out (if
// non-nil); error answers wrap their sentinel.
func (p *peers) call(ctx context.Context, op, node, addr, method, path string, id backend.ID, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := p.newReq(ctx, method, addr, path, nil, body)
	if err != nil {
		return err
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return backend.Errorf(op, "cluster", id, backend.ErrUnavailable, "node %s at %s: %v", node, addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return respErr(op, node, id, resp)
	}
	if out != nil {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
			return backend.Errorf(op, "cluster", id, backend.ErrUnavailable, "node %s: bad answer: %v", node, err)
		}
	}
	return nil
}

// open starts streaming node's local copy of id from offset.
func (p *peers) open(ctx context.Context, node, addr string, id backend.ID, offset int64) (*http.Response, backend.ObjectInfo, error) {
	q := url.Values{}
	if offset > 0 {
		q.Set("offset", strconv.FormatInt(offset, 10))
	}
	req, err := p.newReq(ctx, http.MethodGet, addr, "objects/"+url.PathEscape(string(id)), q, nil)
	if err != nil {
		return nil, backend.ObjectInfo{}, err
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, backend.ObjectInfo{}, backend.Errorf("fetch", "cluster", id, backend.ErrUnavailable, "node %s at %s: %v", node, addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, backend.ObjectInfo{}, respErr("fetch", node, id, resp)
	}
	info, err := parseInfo(id, resp.Header)
	if err != nil {
		resp.Body.Close()
		return nil, info, backend.Errorf("fetch", "cluster", id, backend.ErrUnavailable, "node %s: %v", node, err)
	}
	return resp, info, nil
}

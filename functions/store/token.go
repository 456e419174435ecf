package store

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Position is how far one partition of a store has got: its epoch (the random
// identity its first create wrote, which replicates with the data, so a store
// started afresh or another history has another one) and a seq in it.
type Position struct {
	Part  int
	Epoch string
	Seq   int64
}

// Token is an opaque consistency token: the positions, one per partition, that an
// answer reflected. A read with a token is answered only by a Redis whose epoch
// matches each position's and which has applied its seq. Clients echo the newest
// token they hold; Join keeps the further position of each partition.
//
// Its text is "<partition>:<epoch>.<seq>" per partition, joined by commas, in
// partition order; clients must not build or read it.
type Token []Position

// Cursor is where the next page starts: per partition, records below seq Seq of
// the history Epoch. Seq 0 means from the newest; 1 means the partition is done.
// Its text is that of a Token.
type Cursor []Position

// maxEpochLen bounds an epoch in a token or cursor; the functions write 12
// characters.
const maxEpochLen = 32

func (t Token) String() string  { return formatPositions(t) }
func (c Cursor) String() string { return formatPositions(c) }

func formatPositions(ps []Position) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(p.Part))
		b.WriteByte(':')
		b.WriteString(p.Epoch)
		b.WriteByte('.')
		b.WriteString(strconv.FormatInt(p.Seq, 10))
	}
	return b.String()
}

// ErrBadToken is wrapped by the errors of ParseToken and ParseCursor.
var ErrBadToken = errors.New("not a token this store handed out")

// ParseToken reads a token of a store of parts partitions: at most one position per
// partition, each with an epoch.
func ParseToken(s string, parts int) (Token, error) {
	ps, err := parsePositions(s, parts, false)
	return Token(ps), err
}

// ParseCursor reads a cursor of a store of parts partitions: a position for every
// partition. A plain seq, as the layout before epochs handed out, is a cursor of a
// store of one partition with no epoch to check.
func ParseCursor(s string, parts int) (Cursor, error) {
	if n, ok := decimal(s, maxSeq); ok && parts == 1 && n > 0 {
		return Cursor{{Part: 0, Seq: n}}, nil
	}
	ps, err := parsePositions(s, parts, true)
	if err == nil && len(ps) != parts {
		err = fmt.Errorf("%w: it names %d of %d partitions", ErrBadToken, len(ps), parts)
	}
	for _, p := range ps {
		if err == nil && p.Seq < 1 {
			err = fmt.Errorf("%w: position %d of partition %d (cursors hold 1 and up)", ErrBadToken, p.Seq, p.Part)
		}
	}
	if err != nil {
		return nil, err
	}
	return Cursor(ps), nil
}

func parsePositions(s string, parts int, cursor bool) ([]Position, error) {
	if s == "" {
		return nil, nil
	}
	if len(s) > parts*(4+maxEpochLen+12) {
		return nil, fmt.Errorf("%w: too long", ErrBadToken)
	}
	var ps []Position
	for item := range strings.SplitSeq(s, ",") {
		pstr, rest, ok1 := strings.Cut(item, ":")
		epoch, seqStr, ok2 := strings.Cut(rest, ".")
		p, okp := decimal(pstr, int64(parts-1))
		seq, oks := decimal(seqStr, maxSeq)
		switch {
		case !ok1 || !ok2 || !okp || !oks:
			return nil, fmt.Errorf("%w: %q is not <partition>:<epoch>.<seq>", ErrBadToken, item)
		case !validEpoch(epoch) && !(cursor && epoch == ""):
			return nil, fmt.Errorf("%w: epoch %q", ErrBadToken, epoch)
		case len(ps) > 0 && int(p) <= ps[len(ps)-1].Part:
			return nil, fmt.Errorf("%w: partitions out of order or repeated", ErrBadToken)
		}
		ps = append(ps, Position{Part: int(p), Epoch: epoch, Seq: seq})
	}
	return ps, nil
}

// validEpoch reports whether e can be an epoch: 1 to maxEpochLen digits and
// lower-case letters.
func validEpoch(e string) bool {
	return e != "" && len(e) <= maxEpochLen && !strings.ContainsFunc(e, func(c rune) bool {
		return !('0' <= c && c <= '9' || 'a' <= c && c <= 'z')
	})
}

// At returns the position t holds for partition p; ok is false when it holds none.
func (t Token) At(p int) (Position, bool) {
	i, found := slices.BinarySearchFunc(t, p, func(x Position, p int) int { return x.Part - p })
	if !found {
		return Position{}, false
	}
	return t[i], true
}

// Join returns the token that holds, for every partition, the further of t's and
// u's positions: u's where the epochs differ (u is the newer answer, from the store
// as it is now).
func (t Token) Join(u Token) Token {
	out := make(Token, 0, max(len(t), len(u)))
	i, j := 0, 0
	for i < len(t) || j < len(u) {
		switch {
		case j == len(u) || (i < len(t) && t[i].Part < u[j].Part):
			out = append(out, t[i])
			i++
		case i == len(t) || u[j].Part < t[i].Part:
			out = append(out, u[j])
			j++
		default:
			p := u[j]
			if t[i].Epoch == p.Epoch && t[i].Seq > p.Seq {
				p = t[i]
			}
			out = append(out, p)
			i++
			j++
		}
	}
	return out
}

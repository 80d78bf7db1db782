#!/usr/bin/env python3
"""Drafts the generated part of an upgrade script between two releases.

    python3 scripts/upgrade_draft.py test/upgrade/optout--OLD.sql optout--NEW.sql

Prints: DROP FUNCTION for each signature gone; CREATE OR REPLACE of every
function and view new or changed (install order); the statements of other
kinds that are new ("-- NEW OTHER:", to write by hand: tables change with
ALTER TABLE, not CREATE TABLE); then every COMMENT, REVOKE and GRANT of the
new script. A draft to read, not a script to ship: test/scripts/upgrade.sh
proves the result."""
import re
def split(s):
    """The statements of SQL text (each with the comments before it), and what follows the last."""
    out=[]; i=0; n=len(s); start=0
    while i<n:
        c=s[i]
        if s.startswith('--',i):
            j=s.find('\n',i); i = n if j<0 else j+1; continue
        if s.startswith('/*',i):
            i=s.index('*/',i)+2; continue
        if c=="'":
            i+=1
            while True:
                j=s.index("'",i)
                if j+1<n and s[j+1]=="'": i=j+2; continue
                i=j+1; break
            continue
        if c=='"':
            i=s.index('"',i+1)+1; continue
        if c=='$':
            m=re.compile(r'\$([A-Za-z_]\w*)?\$').match(s,i)
            if m:
                tag=m.group(0); i=s.index(tag,m.end())+len(tag); continue
        if c==';':
            out.append(s[start:i+1]); start=i+1
        i+=1
    tail=s[start:]
    return out, tail
def body(stmt):
    # statement without leading comments/whitespace
    lines=stmt.split('\n'); k=0
    while k<len(lines) and (lines[k].strip()=='' or lines[k].strip().startswith('--')): k+=1
    return '\n'.join(lines[k:]).strip()
def key(stmt):
    b=body(stmt)
    m=re.match(r'CREATE (?:OR REPLACE )?(FUNCTION|PROCEDURE) (optout\.\w+)\s*\((.*?)\)\s*(RETURNS|LANGUAGE|AS|SET|SECURITY|STABLE|IMMUTABLE|VOLATILE|$)', b, re.S)
    if m: return ('function', m.group(2), m.group(3))
    m=re.match(r'CREATE (?:OR REPLACE )?VIEW (optout\.\w+)', b)
    if m: return ('view', m.group(1), '')
    return ('other', b.split('\n')[0][:100], '')
import sys
old=open(sys.argv[1]).read(); new=open(sys.argv[2]).read()
def norm(t): return re.sub(r'\s+',' ',re.sub(r'^CREATE (OR REPLACE )?','CREATE ',t)).strip()
def argtypes(args):
    # crude: drop names and defaults
    out=[]
    depth=0; cur=''
    for ch in args:
        if ch=='(' : depth+=1
        if ch==')' : depth-=1
        if ch==',' and depth==0: out.append(cur); cur=''
        else: cur+=ch
    if cur.strip(): out.append(cur)
    res=[]
    for a in out:
        a=re.sub(r'\s+DEFAULT\s+.*$','',a.strip(),flags=re.S)
        a=re.sub(r'^(IN|OUT|INOUT|VARIADIC)\s+','',a)
        parts=a.split(None,1)
        res.append(parts[1] if len(parts)==2 else parts[0])
    return ', '.join(res)
fre=re.compile(r'CREATE (?:OR REPLACE )?(FUNCTION|PROCEDURE) (optout\.\w+)\s*\((.*?)\)\s*(?=RETURNS|LANGUAGE|AS|SET|SECURITY|STABLE|IMMUTABLE|VOLATILE)', re.S)
vre=re.compile(r'CREATE (?:OR REPLACE )?VIEW (optout\.\w+)')
def parse(s):
    st,_=split(s); res=[]
    for x in st:
        b=body(x)
        m=fre.match(b)
        if m: res.append(('f', m.group(2)+'('+argtypes(m.group(3))+')', b)); continue
        m=vre.match(b)
        if m: res.append(('v', m.group(1), b)); continue
        res.append(('o', norm(b), b))
    return res
O=parse(old); N=parse(new)
Of={k:b for t,k,b in O if t in 'fv'}; Nf={k:b for t,k,b in N if t in 'fv'}
Oo=set(k for t,k,b in O if t=='o')
out=[]
for k in Of:
    if k not in Nf:
        out.append(('DROP FUNCTION %s;' if '(' in k else 'DROP VIEW %s;') % k)
for t,k,b in N:
    if t in 'fv':
        if k in Of and norm(Of[k])==norm(b): continue
        out.append(re.sub(r'^CREATE (OR REPLACE )?','CREATE OR REPLACE ',b) if k in Of else b)
    else:
        if re.match(r'(COMMENT ON|REVOKE|GRANT) ',b): continue
        if k not in Oo: out.append('-- NEW OTHER:\n'+b)
for t,k,b in N:
    if t=='o' and re.match(r'(COMMENT ON|REVOKE|GRANT) ',b): out.append(b)
print('\n\n'.join(out))

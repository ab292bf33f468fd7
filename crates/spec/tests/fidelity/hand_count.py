# Hand-count rules for manifest.tsv (see README.md): plain line patterns, independent of the
# parser. Run from crates/spec/tests: python3 -c 'import sys; sys.path.insert(0, "fidelity"); import hand_count'.

import re, sys, os, json
root = '.'
def unfenced(text):
    out=[]; fence=False
    for l in text.split('\n'):
        if l.strip().startswith('```') or l.strip().startswith('~~~'):
            fence = not fence; out.append(''); continue
        out.append('' if fence else l)
    return out
def strip_comments(text):
    return re.sub(r'<!--.*?-->', lambda m: '\n'*m.group(0).count('\n'), text, flags=re.S)
STORY=re.compile(r'^### .*?(User Story|用户故事|ユーザーストーリー|使用者故事)\s*\d+|^### .*[(（][^()（）]*[:：]\s*P\d+\s*[)）]\s*$', re.I)
def speckit(text):
    L=unfenced(strip_comments(text))
    fr=sum(1 for l in L if re.match(r'^[-*] (\*\*FR-[0-9][0-9A-Za-z.-]*\*\*|FR-[0-9][0-9A-Za-z.-]*[:：])', l))
    sc=sum(1 for l in L if re.match(r'^[-*] \*\*SC-[0-9]', l))
    stories=0; scen=0; instory=False
    for l in L:
        if l.startswith('#### ') and instory:
            if re.match(r'^#### Scenario', l): scen+=1
            continue
        if l.startswith('#'):
            if l.strip() == '### Primary User Story':
                stories+=1; instory=True; continue
            if l.strip() == '### Acceptance Scenarios' and instory:
                continue
            instory = bool(STORY.match(l)) and l.startswith('### ')
            if instory: stories+=1
            continue
        if instory and re.match(r'^\d+\. ', l) and l.count('**')>=4:
            scen+=1
        if instory and re.match(r'^\*\*Scenario \d+', l):
            scen+=1
    return dict(requirements=fr, stories=stories, scenarios=scen, success_criteria=sc)
def kiro(text):
    L=unfenced(strip_comments(text)); crit=0; ingroup=False; inac=False
    for l in L:
        if re.match(r'^### (Requirement|要件|需求)\s*\d', l): ingroup=True; inac=False; continue
        if l.startswith('## ') or l.startswith('### '): ingroup=False; inac=False; continue
        if l.startswith('#### '): inac = ingroup; continue
        if ingroup and re.match(r'^\d+\. ', l): crit+=1
    return dict(requirements=crit)
def openspec(text):
    L=unfenced(text)
    r=sum(1 for l in L if l.startswith('### Requirement:'))
    s=sum(1 for l in L if l.startswith('#### Scenario:'))
    ren=sum(1 for l in L if re.match(r'^\s*- (\*\*)?TO:?(\*\*)?', l))
    return dict(requirements=r+ren, scenarios=s)
KW=re.compile(r'\b(MUST|SHALL|SHOULD|REQUIRED|RECOMMENDED)\b')
def nlspec(text):
    L=unfenced(text); reqs=0; acc=0; dod=None; table=False
    for l in L:
        m=re.match(r'^(#+) (.*)', l)
        if m:
            lvl=len(m.group(1)); h=m.group(2)
            if dod is not None and lvl<=dod: dod=None
            if re.sub(r'^[\d.]+\s*','',h).lower().startswith('definition of done'): dod=lvl
            continue
        if dod is not None:
            if re.match(r'^\s*[-*] \[[ xX]\]', l): acc+=1
            elif l.startswith('|') and re.search(r'\|\s*\[[ xX]\]\s*\|', l): acc+=1
            continue
        if l.startswith('|'): continue
        # sentences with a keyword; list item = one
        if re.match(r'^\s*([-*]|\d+\.) ', l):
            if KW.search(l): reqs+=1
        else:
            for snt in re.split(r'(?<=[.!?])\s+', l):
                if KW.search(snt): reqs+=1
    return dict(requirements=reqs, acceptance=acc)
def tasks(path):
    if not os.path.exists(path): return None
    t=open(path).read()
    return sum(1 for l in t.split('\n') if re.match(r'^\s*[-*] \[[ xX]\] (\*\*)?(T\d+|\d+(\.\d+)*[a-z]?\.?\s)', l))

------------------------------- MODULE Election -------------------------------
(*
  The voting election among the sync nodes, the heartbeats that carry the
  store configuration, check-quorum, and the leader's configuration changes
  up to the point where a configuration is committed on a majority of sync
  nodes and installed on the store with NewEpoch.

  Each action is named after the Python handler that implements it
  (spec/README.md has the table).
*)
EXTENDS ClusterBase

-------------------------------------------------------------------------------
\* Role changes

\* The leader-only state of a node that is not leading.
ClearLeaderState(n) ==
    /\ configAcks' = [configAcks EXCEPT ![n] = {}]
    /\ heardFrom' = [heardFrom EXCEPT ![n] = {}]
    /\ leaderPhase' = [leaderPhase EXCEPT ![n] = "none"]

\* The term node `n` moves to on a message of term `t`, and the role and vote
\* that go with it: a higher term makes any node a follower with no vote.
\* @type: (Str, Int) => Int;
TermAfter(n, t) == Max(currentTerm[n], t)
\* @type: (Str, Int) => Str;
RoleAfter(n, t) == IF t > currentTerm[n] THEN "follower" ELSE role[n]
\* @type: (Str, Int) => Str;
VoteAfter(n, t) == IF t > currentTerm[n] THEN "" ELSE votedFor[n]

\* Node `n` moves to term `t` (at least its own) and, if the term is higher,
\* becomes a follower.
MoveToTerm(n, t) ==
    /\ currentTerm' = [currentTerm EXCEPT ![n] = TermAfter(n, t)]
    /\ role' = [role EXCEPT ![n] = RoleAfter(n, t)]
    /\ votedFor' = [votedFor EXCEPT ![n] = VoteAfter(n, t)]
    /\ IF t > currentTerm[n]
       THEN ClearLeaderState(n)
       ELSE UNCHANGED <<configAcks, heardFrom, leaderPhase>>

\* The other sync nodes.
Peers(n) == SyncNodes \ {n}

-------------------------------------------------------------------------------
\* Election

\* Sync node n times out without hearing from a leader and becomes a
\* pre-candidate: it asks every peer whether it could win the next term,
\* changing nothing on disk.
ElectionTimeout(n) ==
    /\ syncUp[n]
    /\ role[n] \in {"follower", "precandidate", "candidate"}
    /\ currentTerm[n] < MaxTerm
    /\ role' = [role EXCEPT ![n] = "precandidate"]
    /\ preVotesGranted' = [preVotesGranted EXCEPT ![n] = {n}]
    /\ SendAll({[Msg("PreVote", n, p) EXCEPT
                   !.term = currentTerm[n] + 1, !.cfg = syncConfig[n]]
                : p \in Peers(n)})
    /\ UNCHANGED <<currentTerm, votedFor, votesGranted, syncUp, configVars,
                   leaderVars, storeVars, outputVars, clientVars, faults,
                   historyVars>>

\* Sync node n answers a PreVote: yes only if it is not leading, the proposed
\* term is above its own and the pre-candidate's configuration is at least as
\* recent as its own. It changes neither its term nor its vote. (Whether n
\* heard from a leader recently is timing, which the spec leaves open: n may
\* answer yes whenever these conditions hold.)
HandlePreVote(m) ==
    LET n == m.dst
        grant == /\ role[n] /= "leader"
                 /\ m.term > currentTerm[n]
                 /\ ConfigAtLeast(m.cfg, syncConfig[n])
    IN
    /\ m.type = "PreVote"
    /\ syncUp[n]
    /\ Reply(m, {[Msg("PreVoteReply", n, m.src) EXCEPT
                   !.term = m.term, !.granted = grant]})
    /\ UNCHANGED <<electionVars, configVars, leaderVars, storeVars, outputVars,
                   clientVars, faults, historyVars>>

\* Pre-candidate n counts a PreVote answer; with a majority of yes it becomes
\* a candidate: next term, a vote for itself, RequestVote to every peer.
HandlePreVoteReply(m) ==
    LET n == m.dst
        counts == /\ role[n] = "precandidate"
                  /\ m.term = currentTerm[n] + 1
                  /\ m.granted
        granted == preVotesGranted[n] \cup {m.src}
    IN
    /\ m.type = "PreVoteReply"
    /\ syncUp[n]
    /\ IF counts /\ IsMajority(granted)
       THEN /\ currentTerm' = [currentTerm EXCEPT ![n] = m.term]
            /\ role' = [role EXCEPT ![n] = "candidate"]
            /\ votedFor' = [votedFor EXCEPT ![n] = n]
            /\ votesGranted' = [votesGranted EXCEPT ![n] = {n}]
            /\ preVotesGranted' = [preVotesGranted EXCEPT ![n] = {}]
            /\ Reply(m, {[Msg("RequestVote", n, p) EXCEPT
                            !.term = m.term, !.cfg = syncConfig[n]]
                         : p \in Peers(n)})
       ELSE /\ preVotesGranted' = [preVotesGranted EXCEPT ![n] =
                                     IF counts THEN granted ELSE @]
            /\ UNCHANGED <<currentTerm, role, votedFor, votesGranted>>
            /\ Discard(m)
    /\ UNCHANGED <<syncUp, configVars, leaderVars, storeVars, outputVars,
                   clientVars, faults, historyVars>>

\* Sync node n handles a RequestVote: it grants at most one vote per term, and
\* only to a candidate whose configuration is at least as recent as its own.
\* The DoubleVote bug grants a second vote in the same term.
HandleRequestVote(m) ==
    LET n == m.dst
        term == TermAfter(n, m.term)
        vote == VoteAfter(n, m.term)
        grant == /\ m.term = term
                 /\ \/ vote \in {"", m.src}
                    \/ Bug("DoubleVote")
                 /\ ConfigAtLeast(m.cfg, syncConfig[n])
    IN
    /\ m.type = "RequestVote"
    /\ syncUp[n]
    /\ currentTerm' = [currentTerm EXCEPT ![n] = term]
    /\ role' = [role EXCEPT ![n] = RoleAfter(n, m.term)]
    /\ votedFor' = [votedFor EXCEPT ![n] = IF grant THEN m.src ELSE vote]
    /\ IF m.term > currentTerm[n]
       THEN ClearLeaderState(n)
       ELSE UNCHANGED <<configAcks, heardFrom, leaderPhase>>
    /\ Reply(m, {[Msg("VoteReply", n, m.src) EXCEPT
                   !.term = term, !.granted = grant, !.cfg = syncConfig[n]]})
    /\ UNCHANGED <<votesGranted, preVotesGranted, syncUp, syncConfig, leaderVars, storeVars,
                   outputVars, clientVars, faults, historyVars>>

\* Candidate n counts a vote reply and adopts the voter's configuration if it
\* is more recent than its own.
HandleVoteReply(m) ==
    LET n == m.dst IN
    /\ m.type = "VoteReply"
    /\ syncUp[n]
    /\ MoveToTerm(n, m.term)
    /\ votesGranted' =
         [votesGranted EXCEPT ![n] =
            IF m.term = currentTerm[n] /\ role[n] = "candidate" /\ m.granted
            THEN @ \cup {m.src} ELSE @]
    /\ syncConfig' =
         [syncConfig EXCEPT ![n] =
            IF m.term = currentTerm[n] /\ role[n] = "candidate"
            THEN NewerConfig(m.cfg, @) ELSE @]
    /\ Discard(m)
    /\ UNCHANGED <<preVotesGranted, syncUp, leaderVars, storeVars, outputVars,
                   clientVars, faults, historyVars>>

\* Candidate n has votes from a majority and becomes leader. Before anything
\* else it writes its term to output.fence; if the fence already holds a
\* higher term, n has been deposed and becomes a follower.
BecomeLeader(n) ==
    /\ syncUp[n]
    /\ role[n] = "candidate"
    /\ IsMajority(votesGranted[n])
    /\ IF fence <= currentTerm[n]
       THEN /\ role' = [role EXCEPT ![n] = "leader"]
            /\ fence' = currentTerm[n]
       ELSE /\ role' = [role EXCEPT ![n] = "follower"]
            /\ UNCHANGED fence
    /\ configAcks' = [configAcks EXCEPT ![n] = {n}]
    /\ heardFrom' = [heardFrom EXCEPT ![n] = {n}]
    /\ leaderPhase' = [leaderPhase EXCEPT ![n] = "none"]
    /\ leaderLog' = [leaderLog EXCEPT ![n] = <<>>]
    /\ leaderCommit' = [leaderCommit EXCEPT ![n] = 0]
    /\ outputSeen' = [outputSeen EXCEPT ![n] = Len(output)]
    /\ UNCHANGED <<currentTerm, votedFor, votesGranted, preVotesGranted, syncUp,
                   syncConfig, clock, clientTable, storeVars, output, clientVars,
                   netVars, historyVars>>

-------------------------------------------------------------------------------
\* Heartbeats and check-quorum

\* Leader n sends Heartbeat(term, config) to every peer.
SendHeartbeats(n) ==
    /\ syncUp[n]
    /\ role[n] = "leader"
    /\ SendAll({[Msg("Heartbeat", n, p) EXCEPT
                   !.term = currentTerm[n], !.cfg = syncConfig[n]]
                : p \in Peers(n)})
    /\ UNCHANGED <<electionVars, configVars, leaderVars, storeVars, outputVars,
                   clientVars, faults, historyVars>>

\* Sync node n handles a heartbeat: from a current leader it becomes a
\* follower, stores the configuration if it is more recent, and replies with
\* the configuration it now holds; a stale leader gets n's higher term back.
HandleHeartbeat(m) ==
    LET n == m.dst
        current == m.term >= currentTerm[n]
        cfg == IF current THEN NewerConfig(m.cfg, syncConfig[n])
               ELSE syncConfig[n]
    IN
    /\ m.type = "Heartbeat"
    /\ syncUp[n]
    /\ currentTerm' = [currentTerm EXCEPT ![n] = TermAfter(n, m.term)]
    /\ role' = [role EXCEPT ![n] = IF current THEN "follower" ELSE @]
    /\ votedFor' = [votedFor EXCEPT ![n] = VoteAfter(n, m.term)]
    /\ syncConfig' = [syncConfig EXCEPT ![n] = cfg]
    /\ IF current
       THEN ClearLeaderState(n)
       ELSE UNCHANGED <<configAcks, heardFrom, leaderPhase>>
    /\ Reply(m, {[Msg("HeartbeatReply", n, m.src) EXCEPT
                   !.term = TermAfter(n, m.term), !.cfg = cfg]})
    /\ UNCHANGED <<votesGranted, preVotesGranted, syncUp, leaderVars, storeVars, outputVars,
                   clientVars, faults, historyVars>>

\* Leader n handles a heartbeat reply: it records that the peer answered and,
\* if the peer holds the leader's configuration, counts it towards the
\* configuration's commitment. A higher term deposes n.
HandleHeartbeatReply(m) ==
    LET n == m.dst
        counts == m.term = currentTerm[n] /\ role[n] = "leader"
    IN
    /\ m.type = "HeartbeatReply"
    /\ syncUp[n]
    /\ IF m.term > currentTerm[n]
       THEN MoveToTerm(n, m.term)
       ELSE /\ heardFrom' = [heardFrom EXCEPT ![n] =
                              IF counts THEN @ \cup {m.src} ELSE @]
            /\ configAcks' = [configAcks EXCEPT ![n] =
                               IF counts /\ m.cfg = syncConfig[n]
                               THEN @ \cup {m.src} ELSE @]
            /\ UNCHANGED <<currentTerm, role, votedFor, leaderPhase>>
    /\ Discard(m)
    /\ UNCHANGED <<votesGranted, preVotesGranted, syncUp, syncConfig, leaderVars, storeVars,
                   outputVars, clientVars, faults, historyVars>>

\* Leader n checks that it heard from a majority since its last check; if it
\* did not, it steps down, so an isolated leader stops accepting requests.
CheckQuorum(n) ==
    /\ syncUp[n]
    /\ role[n] = "leader"
    /\ IF IsMajority(heardFrom[n])
       THEN /\ heardFrom' = [heardFrom EXCEPT ![n] = {n}]
            /\ UNCHANGED <<role, configAcks, leaderPhase>>
       ELSE /\ role' = [role EXCEPT ![n] = "follower"]
            /\ ClearLeaderState(n)
    /\ UNCHANGED <<currentTerm, votedFor, votesGranted, preVotesGranted, syncUp, syncConfig,
                   leaderVars, storeVars, outputVars, clientVars, netVars,
                   historyVars>>

-------------------------------------------------------------------------------
\* Store configurations

\* NOTE: the leader's view of the store nodes (which are up, how long their
\* logs are, which have caught up) is read from the store variables here.
\* The Python leader learns it from the store nodes' replies and timeouts.

\* The active store nodes among `nodes`.
ActiveAmong(nodes) == {s \in nodes : storeStatus[s] = "active"}

\* The active nodes among `nodes` with the longest log.
LongestLogs(nodes) ==
    {s \in ActiveAmong(nodes) :
        \A t \in ActiveAmong(nodes) : Len(storeLog[t]) <= Len(storeLog[s])}

\* Leader n records `cfg` as its new configuration, stored only by itself so
\* far; heartbeats spread it.
Propose(n, cfg) ==
    /\ syncConfig' = [syncConfig EXCEPT ![n] = cfg]
    /\ configAcks' = [configAcks EXCEPT ![n] = {n}]
    /\ leaderPhase' = [leaderPhase EXCEPT ![n] = "proposed"]

\* The joining backups of `cfg` that have not yet synced in its epoch. A
\* backup that has is known to hold every committed entry and becomes a full
\* member in the next configuration.
StillJoining(cfg) ==
    {s \in cfg.joining : storeSyncedTo[s] /= [epoch |-> cfg.epoch, term |-> cfg.term]}

\* Leader n chooses a new configuration in a new epoch: right after its
\* election (every leader opens its own epoch, dropping members that are not
\* active), or to add back store nodes that restarted and caught up, as
\* joining backups. The primary stays if it is active; otherwise it is the
\* active full member with the longest log.
ProposeConfig(n) ==
    LET old == syncConfig[n]
        elected == leaderPhase[n] = "none"
        joiners == {s \in StoreNodes \ Members(old) : storeStatus[s] = "caughtup"}
        members == IF elected THEN ActiveAmong(Members(old))
                   ELSE Members(old) \cup joiners
        joining == IF elected THEN StillJoining(old) \cap members
                   ELSE StillJoining(old) \cup joiners
    IN
    /\ syncUp[n]
    /\ role[n] = "leader"
    /\ old.epoch < MaxEpoch
    /\ \/ elected
       \/ leaderPhase[n] = "ready" /\ joiners /= {}
    /\ \E p \in StoreNodes :
          /\ IF old.primary \in ActiveAmong(members)
             THEN p = old.primary
             ELSE p \in LongestLogs(members \ joining)
          /\ Propose(n, [epoch |-> old.epoch + 1, term |-> currentTerm[n],
                         primary |-> p, backups |-> members \ {p},
                         joining |-> joining \ {p}])
    /\ UNCHANGED <<electionVars, heardFrom, leaderVars, storeVars, outputVars,
                   clientVars, netVars, historyVars>>

\* Leader n suspects that store node s, a member of its configuration, has
\* failed, and proposes a configuration without it. A failed primary is
\* replaced by the active full member with the longest log; with none, the
\* leader waits. The suspicion may be false: the spec lets the leader drop
\* any member, as a timeout can.
DetectStoreFailure(n, s) ==
    LET old == syncConfig[n]
        rest == Members(old) \ {s}
        joining == StillJoining(old) \ {s}
    IN
    /\ syncUp[n]
    /\ role[n] = "leader"
    /\ leaderPhase[n] \in {"installing", "ready"}
    /\ s \in Members(old)
    /\ old.epoch < MaxEpoch
    /\ \E p \in StoreNodes :
          /\ IF s = old.primary THEN p \in LongestLogs(rest \ joining)
                                ELSE p = old.primary
          /\ Propose(n, [epoch |-> old.epoch + 1, term |-> currentTerm[n],
                         primary |-> p, backups |-> rest \ {p},
                         joining |-> joining \ {p}])
    /\ UNCHANGED <<electionVars, heardFrom, leaderVars, storeVars, outputVars,
                   clientVars, netVars, historyVars>>

\* Leader n's configuration is stored on a majority of sync nodes, so it is
\* committed: n sends NewEpoch to every member. It repeats this until the
\* primary reports EpochReady, since NewEpoch can be lost.
InstallEpoch(n) ==
    /\ syncUp[n]
    /\ role[n] = "leader"
    /\ leaderPhase[n] \in {"proposed", "installing"}
    /\ IsMajority(configAcks[n])
    /\ leaderPhase' = [leaderPhase EXCEPT ![n] = "installing"]
    /\ SendAll({[Msg("NewEpoch", n, s) EXCEPT
                   !.term = currentTerm[n], !.epoch = syncConfig[n].epoch,
                   !.cfg = syncConfig[n]]
                : s \in Members(syncConfig[n])})
    /\ UNCHANGED <<electionVars, syncConfig, configAcks, heardFrom, leaderVars,
                   storeVars, outputVars, clientVars, faults, historyVars>>
===============================================================================

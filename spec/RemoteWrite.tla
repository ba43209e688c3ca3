------------------------------ MODULE RemoteWrite -----------------------------
(*
  The primary-backup remote write among the store nodes (Tanenbaum and van
  Steen, Distributed Systems, primary-backup protocols), the NewEpoch install
  and epoch sync that start each configuration, catch-up of a restarted store
  node, and the sync leader's side of the write: client requests with
  exactly-once request ids, Lamport stamps, WriteAck and the fenced append to
  output.txt.

  Message flow of one write:
    W1 ClientRequest  client -> sync leader
    W2 Write          sync leader -> primary
    W3 Replicate      primary -> each backup
    W4 ReplicateReply backup -> primary
    W5 WriteAck       primary -> sync leader, then AppendOutput and
                      ClientReply
*)
EXTENDS ClusterBase

-------------------------------------------------------------------------------
\* Store helpers

\* TRUE when store node s is the primary of the epoch it installed.
IsPrimary(s) == storeConfig[s].primary = s

\* The epoch check: a message of epoch e is current for store node s. The
\* SkipEpochCheck bug accepts any epoch.
EpochCurrent(s, e) == e = storeEpoch[s] \/ Bug("SkipEpochCheck")

\* The epoch check for NewEpoch and EpochSync: reject an older epoch, and an
\* older leader term than the one that installed s's epoch.
InstallAllowed(s, epoch, term) ==
    \/ StampAtLeast([epoch |-> epoch, term |-> term],
                    [epoch |-> storeEpoch[s], term |-> storeTerm[s]])
       /\ term >= storeTerm[s]
    \/ Bug("SkipEpochCheck")

\* Store node s installs configuration `cfg` of leader `leader` in `term`.
Install(s, cfg, term, leader) ==
    /\ storeEpoch' = [storeEpoch EXCEPT ![s] = cfg.epoch]
    /\ storeTerm' = [storeTerm EXCEPT ![s] = term]
    /\ storeConfig' = [storeConfig EXCEPT ![s] = cfg]
    /\ storeLeader' = [storeLeader EXCEPT ![s] = leader]
    /\ storeStatus' = [storeStatus EXCEPT ![s] = "active"]
    /\ storeHigh' = [storeHigh EXCEPT ![s] =
                      IF StampAtLeast([epoch |-> cfg.epoch, term |-> term], @)
                      THEN [epoch |-> cfg.epoch, term |-> term] ELSE @]

\* The EpochReady that primary s sends to its leader once every backup holds
\* its log.
EpochReadyMsg(s, leader, term, epoch, log) ==
    [Msg("EpochReady", s, leader) EXCEPT
       !.term = term, !.epoch = epoch, !.log = log, !.commit = Len(log)]

-------------------------------------------------------------------------------
\* Epoch install and epoch sync

\* Store node s handles NewEpoch: after the epoch check it installs the
\* configuration. A primary then sends every backup its log (EpochSync), or,
\* with no backups, reports EpochReady at once.
HandleNewEpoch(m) ==
    LET s == m.dst
        cfg == m.cfg
        alone == cfg.backups = {}
    IN
    /\ m.type = "NewEpoch"
    /\ storeStatus[s] \in {"active", "caughtup"}
    /\ s \in Members(cfg)
    /\ IF ~InstallAllowed(s, cfg.epoch, m.term)
       THEN /\ Discard(m)
            /\ UNCHANGED <<storeVars, readyConfig, storeHigh, committed>>
       ELSE /\ Install(s, cfg, m.term, m.src)
            /\ storeSynced' = [storeSynced EXCEPT ![s] = {}]
            /\ storeMatch' = [storeMatch EXCEPT ![s] = [b \in StoreNodes |-> 0]]
            /\ storeCommit' = [storeCommit EXCEPT ![s] =
                                IF cfg.primary = s /\ alone
                                THEN Len(storeLog[s]) ELSE @]
            /\ UNCHANGED <<storeLog, storeSyncedTo>>
            /\ readyConfig' = IF cfg.primary = s /\ alone THEN cfg ELSE readyConfig
            /\ IF cfg.primary = s
               THEN Reply(m, IF alone
                             THEN {EpochReadyMsg(s, m.src, m.term, cfg.epoch, storeLog[s])}
                             ELSE {[Msg("EpochSync", s, b) EXCEPT
                                      !.term = m.term, !.epoch = cfg.epoch,
                                      !.cfg = cfg, !.log = storeLog[s],
                                      !.commit = storeCommit[s]]
                                   : b \in cfg.backups})
               ELSE Discard(m)
            /\ UpdateCommitted
    /\ UNCHANGED <<electionVars, configVars, leaderVars, outputVars,
                   clientVars, faults, outputWriters>>

\* Backup b handles EpochSync: it keeps as many entries as the primary's
\* commit index (its own commit index if its log is shorter, which stands
\* for the round trip in which the primary resends from there), replaces the
\* rest with the primary's entries, installs the epoch if it had not yet,
\* and reports how much of the log it now holds. A duplicate of an
\* epoch sync it already applied only repeats the reply: applying it again
\* would truncate entries replicated since, committed ones included.
HandleEpochSync(m) ==
    LET b == m.dst
        keep == IF Len(storeLog[b]) >= m.commit THEN m.commit ELSE storeCommit[b]
        log == SubSeq(storeLog[b], 1, keep) \o SubSeq(m.log, keep + 1, Len(m.log))
        stamp == [epoch |-> m.epoch, term |-> m.term]
        applied == storeSyncedTo[b] = stamp /\ storeEpoch[b] = m.epoch
        reply(len) == [Msg("EpochSyncReply", b, m.src) EXCEPT
                         !.term = m.term, !.epoch = m.epoch, !.index = len]
    IN
    /\ m.type = "EpochSync"
    /\ storeStatus[b] \in {"active", "caughtup"}
    /\ b \in m.cfg.backups
    /\ IF applied
       THEN /\ Reply(m, {reply(Len(storeLog[b]))})
            /\ UNCHANGED <<storeLog, storeEpoch, storeTerm, storeConfig,
                           storeLeader, storeStatus, storeHigh, storeSyncedTo>>
       ELSE IF InstallAllowed(b, m.epoch, m.term) /\ Len(m.log) >= keep
       THEN /\ Install(b, m.cfg, m.term, storeLeader[b])
            /\ storeLog' = [storeLog EXCEPT ![b] = log]
            /\ storeSyncedTo' = [storeSyncedTo EXCEPT ![b] = stamp]
            /\ Reply(m, {reply(Len(log))})
       ELSE /\ Discard(m)
            /\ UNCHANGED <<storeLog, storeEpoch, storeTerm, storeConfig,
                           storeLeader, storeStatus, storeHigh, storeSyncedTo>>
    /\ UNCHANGED <<storeCommit, storeSynced, storeMatch, readyConfig>>
    /\ UpdateCommitted
    /\ UNCHANGED <<electionVars, configVars, leaderVars, outputVars,
                   clientVars, faults, outputWriters>>

\* Primary p handles an EpochSyncReply. Once every backup holds p's whole log,
\* that log is committed and p sends EpochReady to its leader.
HandleEpochSyncReply(m) ==
    LET p == m.dst
        synced == storeSynced[p] \cup {m.src}
        done == synced = storeConfig[p].backups
                /\ \A b \in synced :
                      (IF b = m.src THEN m.index ELSE storeMatch[p][b])
                         = Len(storeLog[p])
    IN
    /\ m.type = "EpochSyncReply"
    /\ storeStatus[p] = "active"
    /\ IsPrimary(p)
    /\ m.epoch = storeEpoch[p] /\ m.term = storeTerm[p]
    /\ storeSynced' = [storeSynced EXCEPT ![p] = synced]
    /\ storeMatch' = [storeMatch EXCEPT ![p][m.src] = m.index]
    /\ storeCommit' = [storeCommit EXCEPT ![p] = IF done THEN Len(storeLog[p]) ELSE @]
    /\ readyConfig' = IF done THEN storeConfig[p] ELSE readyConfig
    /\ IF done
       THEN Reply(m, {EpochReadyMsg(p, storeLeader[p], storeTerm[p],
                                      storeEpoch[p], storeLog[p])})
       ELSE Discard(m)
    /\ UNCHANGED <<storeLog, storeEpoch, storeTerm, storeConfig, storeStatus,
                   storeLeader, storeSyncedTo, storeHigh>>
    /\ UpdateCommitted
    /\ UNCHANGED <<electionVars, configVars, leaderVars, outputVars,
                   clientVars, faults, outputWriters>>

\* Leader n handles EpochReady for its configuration: it rebuilds its log,
\* commit index, client table and Lamport clock from the primary's log and
\* starts accepting client requests.
HandleEpochReady(m) ==
    LET n == m.dst
        current == /\ syncUp[n]
                   /\ role[n] = "leader"
                   /\ m.term = currentTerm[n]
                   /\ leaderPhase[n] = "installing"
                   /\ m.epoch = syncConfig[n].epoch
    IN
    /\ m.type = "EpochReady"
    /\ IF current
       THEN /\ leaderPhase' = [leaderPhase EXCEPT ![n] = "ready"]
            /\ leaderLog' = [leaderLog EXCEPT ![n] = m.log]
            /\ leaderCommit' = [leaderCommit EXCEPT ![n] = m.commit]
            /\ clock' = [clock EXCEPT ![n] = MaxLamport(m.log)]
            /\ clientTable' = [clientTable EXCEPT ![n] =
                                 [c \in Clients |-> MaxRequestOf(c, m.log)]]
            /\ UNCHANGED outputSeen
       ELSE UNCHANGED <<leaderPhase, leaderVars>>
    /\ Discard(m)
    /\ UNCHANGED <<electionVars, syncConfig, configAcks, heardFrom, storeVars,
                   outputVars, clientVars, faults, historyVars>>

-------------------------------------------------------------------------------
\* Client requests at the sync leader (W1, W2)

\* The Write that carries entry `i` of leader n's log to the primary.
WriteMsg(n, i) ==
    [Msg("Write", n, syncConfig[n].primary) EXCEPT
       !.term = currentTerm[n], !.epoch = syncConfig[n].epoch, !.index = i,
       !.entry = leaderLog'[n][i]]

\* Sync node n handles a client request. A leader with a ready configuration
\* accepts request id r only if it is the next after the last it assigned to
\* that client: it stamps the entry with its Lamport clock and sends it to
\* the primary. A duplicate is answered if it is already in the output file,
\* and otherwise its Write is sent again. Anything else is dropped and the
\* client retries.
HandleClientRequest(m) ==
    LET n == m.dst
        c == m.client
        r == m.req
        ready == syncUp[n] /\ role[n] = "leader" /\ leaderPhase[n] = "ready"
        stamp == Max(clock[n], m.ts) + 1
        entry == [term |-> currentTerm[n], epoch |-> syncConfig[n].epoch,
                  lamport |-> stamp, client |-> c, req |-> r]
        held == {i \in 1..Len(leaderLog[n]) :
                   leaderLog[n][i].client = c /\ leaderLog[n][i].req = r}
    IN
    /\ m.type = "ClientRequest"
    /\ IF ready /\ r = clientTable[n][c] + 1 /\ Len(leaderLog[n]) < MaxLogLen
       THEN /\ clock' = [clock EXCEPT ![n] = stamp]
            /\ clientTable' = [clientTable EXCEPT ![n][c] = r]
            /\ leaderLog' = [leaderLog EXCEPT ![n] = Append(@, entry)]
            /\ Reply(m, {WriteMsg(n, Len(leaderLog[n]) + 1)})
       ELSE IF ready /\ held /= {}
       THEN LET i == CHOOSE j \in held : TRUE IN
            /\ UNCHANGED <<clock, clientTable, leaderLog>>
            /\ IF i <= Len(output) /\ i <= leaderCommit[n]
               THEN Reply(m, {[Msg("ClientReply", n, c) EXCEPT
                                !.client = c, !.req = r,
                                !.ts = leaderLog[n][i].lamport]})
               ELSE Reply(m, {WriteMsg(n, i)})
       ELSE /\ UNCHANGED <<clock, clientTable, leaderLog>>
            /\ Discard(m)
    /\ UNCHANGED <<electionVars, configVars, leaderCommit, outputSeen,
                   storeVars, outputVars, clientVars, faults, historyVars>>

-------------------------------------------------------------------------------
\* Remote write among the store nodes (W2 to W5)

\* Primary p handles a Write: after the epoch check it appends an entry at
\* the next position (sequence check) and replicates it to every backup; a
\* repeat of an entry it holds is sent again, or acknowledged if committed.
\* With no backups the entry commits at once. The EarlyAck bug acknowledges
\* the entry to the leader before any backup has it.
HandleWrite(m) ==
    LET p == m.dst
        log == storeLog[p]
        append == m.index = Len(log) + 1
        repeat == m.index <= Len(log) /\ log[m.index] = m.entry
        newLog == IF append THEN Append(log, m.entry) ELSE log
        alone == storeConfig[p].backups = {}
        commit == IF alone THEN Len(newLog) ELSE storeCommit[p]
        ack == [Msg("WriteAck", p, m.src) EXCEPT
                  !.epoch = storeEpoch[p], !.commit = commit]
        earlyAck == [ack EXCEPT !.commit = m.index]
        replicate == {[Msg("Replicate", p, b) EXCEPT
                         !.epoch = storeEpoch[p], !.index = m.index,
                         !.entry = m.entry, !.commit = storeCommit[p]]
                      : b \in storeConfig[p].backups}
    IN
    /\ m.type = "Write"
    /\ storeStatus[p] = "active"
    /\ IsPrimary(p)
    /\ IF EpochCurrent(p, m.epoch) /\ (append \/ repeat)
       THEN /\ storeLog' = [storeLog EXCEPT ![p] = newLog]
            /\ storeCommit' = [storeCommit EXCEPT ![p] = commit]
            /\ Reply(m, IF alone \/ (repeat /\ m.index <= storeCommit[p])
                        THEN {ack}
                        ELSE IF Bug("EarlyAck")
                        THEN replicate \cup {earlyAck}
                        ELSE replicate)
       ELSE /\ Discard(m)
            /\ UNCHANGED <<storeLog, storeCommit>>
    /\ UNCHANGED <<storeEpoch, storeTerm, storeConfig, storeStatus, storeLeader,
                   storeSynced, storeMatch, storeSyncedTo, readyConfig, storeHigh>>
    /\ UpdateCommitted
    /\ UNCHANGED <<electionVars, configVars, leaderVars, outputVars,
                   clientVars, faults, outputWriters>>

\* Backup b handles Replicate: after the epoch check it appends the entry at
\* the next position, learns the commit index, and reports its match index
\* once the entry is on disk.
HandleReplicate(m) ==
    LET b == m.dst
        log == storeLog[b]
        append == m.index = Len(log) + 1
        repeat == m.index <= Len(log) /\ log[m.index] = m.entry
        newLog == IF append THEN Append(log, m.entry) ELSE log
    IN
    /\ m.type = "Replicate"
    /\ storeStatus[b] = "active"
    /\ IF EpochCurrent(b, m.epoch) /\ (append \/ repeat)
       THEN /\ storeLog' = [storeLog EXCEPT ![b] = newLog]
            /\ storeCommit' = [storeCommit EXCEPT ![b] =
                                 Max(@, Min(m.commit, Len(newLog)))]
            /\ Reply(m, {[Msg("ReplicateReply", b, m.src) EXCEPT
                           !.epoch = m.epoch, !.index = m.index]})
       ELSE /\ Discard(m)
            /\ UNCHANGED <<storeLog, storeCommit>>
    /\ UNCHANGED <<storeEpoch, storeTerm, storeConfig, storeStatus, storeLeader,
                   storeSynced, storeMatch, storeSyncedTo, readyConfig, storeHigh>>
    /\ UpdateCommitted
    /\ UNCHANGED <<electionVars, configVars, leaderVars, outputVars,
                   clientVars, faults, outputWriters>>

\* Primary p handles ReplicateReply: the commit index becomes the highest
\* position that every backup holds; when it grows, p acknowledges to the
\* leader (WriteAck) and tells the backups (Commit).
HandleReplicateReply(m) ==
    LET p == m.dst
        match == [storeMatch[p] EXCEPT ![m.src] = Max(@, m.index)]
        backups == storeConfig[p].backups
        held == {k \in 0..Len(storeLog[p]) : \A b \in backups : match[b] >= k}
        commit == CHOOSE k \in held : \A j \in held : j <= k
    IN
    /\ m.type = "ReplicateReply"
    /\ storeStatus[p] = "active"
    /\ IsPrimary(p)
    /\ m.epoch = storeEpoch[p]
    /\ m.src \in backups
    /\ storeMatch' = [storeMatch EXCEPT ![p] = match]
    /\ IF commit > storeCommit[p]
       THEN /\ storeCommit' = [storeCommit EXCEPT ![p] = commit]
            /\ Reply(m, {[Msg("WriteAck", p, storeLeader[p]) EXCEPT
                           !.epoch = storeEpoch[p], !.commit = commit]}
                        \cup {[Msg("Commit", p, b) EXCEPT
                                 !.epoch = storeEpoch[p], !.commit = commit]
                              : b \in backups})
       ELSE /\ UNCHANGED storeCommit
            /\ Discard(m)
    /\ UNCHANGED <<storeLog, storeEpoch, storeTerm, storeConfig, storeStatus,
                   storeLeader, storeSynced, storeSyncedTo, readyConfig, storeHigh,
                   committed>>
    /\ UNCHANGED <<electionVars, configVars, leaderVars, outputVars,
                   clientVars, faults, outputWriters>>

\* Backup b handles Commit: it learns the commit index of its epoch.
HandleCommit(m) ==
    LET b == m.dst IN
    /\ m.type = "Commit"
    /\ storeStatus[b] = "active"
    /\ storeCommit' = [storeCommit EXCEPT ![b] =
                         IF m.epoch = storeEpoch[b]
                         THEN Max(@, Min(m.commit, Len(storeLog[b])))
                         ELSE @]
    /\ Discard(m)
    /\ UNCHANGED <<storeLog, storeEpoch, storeTerm, storeConfig, storeStatus,
                   storeLeader, storeSynced, storeMatch, storeSyncedTo, historyVars>>
    /\ UNCHANGED <<electionVars, configVars, leaderVars, outputVars,
                   clientVars, faults>>

\* Leader n handles WriteAck from the primary of its configuration and
\* advances its commit index.
HandleWriteAck(m) ==
    LET n == m.dst IN
    /\ m.type = "WriteAck"
    /\ leaderCommit' = [leaderCommit EXCEPT ![n] =
                          IF /\ syncUp[n] /\ role[n] = "leader"
                             /\ leaderPhase[n] = "ready"
                             /\ m.epoch = syncConfig[n].epoch
                          THEN Max(@, Min(m.commit, Len(leaderLog[n])))
                          ELSE @]
    /\ Discard(m)
    /\ UNCHANGED <<electionVars, configVars, clock, clientTable, leaderLog,
                   outputSeen, storeVars, outputVars, clientVars, faults,
                   historyVars>>

-------------------------------------------------------------------------------
\* Catch-up of a restarted store node

\* Primary p handles CatchUp from a restarted store node and sends it the
\* committed prefix of its log.
HandleCatchUp(m) ==
    LET p == m.dst IN
    /\ m.type = "CatchUp"
    /\ IF storeStatus[p] = "active" /\ IsPrimary(p)
       THEN Reply(m, {[Msg("CatchUpReply", p, m.src) EXCEPT
                        !.term = storeTerm[p], !.epoch = storeEpoch[p],
                        !.log = SubSeq(storeLog[p], 1, storeCommit[p]),
                        !.commit = storeCommit[p]]})
       ELSE Discard(m)
    /\ UNCHANGED <<electionVars, configVars, leaderVars, storeVars,
                   outputVars, clientVars, faults, historyVars>>

\* Restarted store node x takes the committed log from a primary whose epoch
\* is at least its own, and is then ready to be added back.
HandleCatchUpReply(m) ==
    LET x == m.dst IN
    /\ m.type = "CatchUpReply"
    /\ IF /\ storeStatus[x] = "rejoining"
          /\ StampAtLeast([epoch |-> m.epoch, term |-> m.term],
                          [epoch |-> storeEpoch[x], term |-> storeTerm[x]])
          /\ Len(m.log) >= storeCommit[x]
       THEN /\ storeLog' = [storeLog EXCEPT ![x] = m.log]
            /\ storeCommit' = [storeCommit EXCEPT ![x] = m.commit]
            /\ storeStatus' = [storeStatus EXCEPT ![x] = "caughtup"]
       ELSE UNCHANGED <<storeLog, storeCommit, storeStatus>>
    /\ Discard(m)
    /\ UNCHANGED <<storeEpoch, storeTerm, storeConfig, storeLeader,
                   storeSynced, storeMatch, storeSyncedTo, readyConfig, storeHigh>>
    /\ UpdateCommitted
    /\ UNCHANGED <<electionVars, configVars, leaderVars, outputVars,
                   clientVars, faults, outputWriters>>

-------------------------------------------------------------------------------
\* Output file

\* Leader n appends the committed entries that follow the last line of
\* output.txt, under the lock, and acknowledges them to their clients. If the
\* fence holds a higher term, n has been deposed: it appends nothing and
\* steps down. The NoFence bug checks neither the fence nor the last line of
\* the file: it appends after the output length n itself last saw.
AppendOutput(n) ==
    LET last == IF Bug("NoFence") THEN outputSeen[n] ELSE Len(output)
        new == SubSeq(leaderLog[n], last + 1, leaderCommit[n])
        fenced == fence > currentTerm[n] /\ ~Bug("NoFence")
    IN
    /\ syncUp[n]
    /\ role[n] = "leader"
    /\ leaderPhase[n] = "ready"
    /\ last < leaderCommit[n]
    /\ IF fenced
       THEN /\ role' = [role EXCEPT ![n] = "follower"]
            /\ configAcks' = [configAcks EXCEPT ![n] = {}]
            /\ heardFrom' = [heardFrom EXCEPT ![n] = {}]
            /\ leaderPhase' = [leaderPhase EXCEPT ![n] = "none"]
            /\ UNCHANGED <<output, msgs, outputWriters, outputSeen>>
       ELSE /\ output' = output \o new
            /\ outputSeen' = [outputSeen EXCEPT ![n] = last + Len(new)]
            /\ outputWriters' =
                 outputWriters \o [i \in 1..Len(new) |->
                                     [term |-> currentTerm[n], fence |-> fence]]
            /\ SendAll({[Msg("ClientReply", n, new[i].client) EXCEPT
                           !.client = new[i].client, !.req = new[i].req,
                           !.ts = new[i].lamport]
                        : i \in 1..Len(new)})
            /\ UNCHANGED <<role, configAcks, heardFrom, leaderPhase>>
    /\ UNCHANGED <<currentTerm, votedFor, votesGranted, preVotesGranted, syncUp,
                   syncConfig, clock, clientTable, leaderLog, leaderCommit,
                   storeVars, fence, clientVars, faults, committed,
                   readyConfig, storeHigh>>
===============================================================================

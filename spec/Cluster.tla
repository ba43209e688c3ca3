------------------------------- MODULE Cluster --------------------------------
(*
  The whole system: the election (Election.tla) and the remote write
  (RemoteWrite.tla), with clients, faults as explicit actions, the safety
  invariants and the liveness properties.

  Faults: sync and store nodes crash and restart (keeping what they persist),
  and messages are lost, duplicated and reordered (the network is a bag).
  MaxFaults bounds crashes, drops and duplications together, so in every
  behavior the faults stop; the liveness properties assume fairness from
  then on.
*)
EXTENDS Election, RemoteWrite

-------------------------------------------------------------------------------
\* Initial state

\* The store configuration at start: epoch 0, chosen by no leader.
\* @type: $config;
InitialConfig ==
    LET p == CHOOSE s \in StoreNodes : TRUE
    IN [epoch |-> 0, term |-> 0, primary |-> p, backups |-> StoreNodes \ {p},
        joining |-> {}]

Init ==
    /\ currentTerm = [n \in SyncNodes |-> 0]
    /\ role = [n \in SyncNodes |-> "follower"]
    /\ votedFor = [n \in SyncNodes |-> ""]
    /\ votesGranted = [n \in SyncNodes |-> {}]
    /\ preVotesGranted = [n \in SyncNodes |-> {}]
    /\ syncUp = [n \in SyncNodes |-> TRUE]
    /\ syncConfig = [n \in SyncNodes |-> InitialConfig]
    /\ configAcks = [n \in SyncNodes |-> {}]
    /\ heardFrom = [n \in SyncNodes |-> {}]
    /\ leaderPhase = [n \in SyncNodes |-> "none"]
    /\ clock = [n \in SyncNodes |-> 0]
    /\ clientTable = [n \in SyncNodes |-> [c \in Clients |-> 0]]
    /\ leaderLog = [n \in SyncNodes |-> <<>>]
    /\ leaderCommit = [n \in SyncNodes |-> 0]
    /\ outputSeen = [n \in SyncNodes |-> 0]
    /\ storeLog = [s \in StoreNodes |-> <<>>]
    /\ storeCommit = [s \in StoreNodes |-> 0]
    /\ storeEpoch = [s \in StoreNodes |-> 0]
    /\ storeTerm = [s \in StoreNodes |-> 0]
    /\ storeConfig = [s \in StoreNodes |-> InitialConfig]
    /\ storeStatus = [s \in StoreNodes |-> "active"]
    /\ storeLeader = [s \in StoreNodes |-> ""]
    /\ storeSynced = [s \in StoreNodes |-> {}]
    /\ storeMatch = [s \in StoreNodes |-> [b \in StoreNodes |-> 0]]
    /\ storeSyncedTo = [s \in StoreNodes |-> [epoch |-> 0, term |-> 0]]
    /\ output = <<>>
    /\ fence = 0
    /\ clientClock = [c \in Clients |-> 0]
    /\ clientSent = [c \in Clients |-> 0]
    /\ clientTs = [c \in Clients |-> [r \in 1..MaxRequests |-> 0]]
    /\ clientAcked = [c \in Clients |-> {}]
    /\ msgs = [m \in {} |-> 0]
    /\ faults = 0
    /\ committed = <<>>
    /\ readyConfig = InitialConfig
    /\ storeHigh = [s \in StoreNodes |-> [epoch |-> 0, term |-> 0]]
    /\ outputWriters = <<>>

-------------------------------------------------------------------------------
\* Clients

\* Client c sends request id r to sync node n: the next new request, with a
\* Lamport timestamp one above its clock, or a resend of an unacknowledged
\* one with the same id and timestamp.
ClientSend(c, n, r) ==
    LET new == r = clientSent[c] + 1
        ts == IF new THEN clientClock[c] + 1 ELSE clientTs[c][r]
    IN
    /\ r \in 1..MaxRequests
    /\ r <= clientSent[c] + 1
    /\ r \notin clientAcked[c]
    /\ IF new
       THEN /\ clientClock' = [clientClock EXCEPT ![c] = ts]
            /\ clientSent' = [clientSent EXCEPT ![c] = r]
            /\ clientTs' = [clientTs EXCEPT ![c][r] = ts]
       ELSE UNCHANGED <<clientClock, clientSent, clientTs>>
    /\ Send([Msg("ClientRequest", c, n) EXCEPT
               !.client = c, !.req = r, !.ts = ts])
    /\ UNCHANGED <<clientAcked, electionVars, configVars, leaderVars,
                   storeVars, outputVars, faults, historyVars>>

\* Client c handles a reply: the request is acknowledged, and the client's
\* clock moves past the reply's timestamp.
HandleClientReply(m) ==
    LET c == m.dst IN
    /\ m.type = "ClientReply"
    /\ clientAcked' = [clientAcked EXCEPT ![c] = @ \cup {m.req}]
    /\ clientClock' = [clientClock EXCEPT ![c] = Max(@, m.ts) + 1]
    /\ Discard(m)
    /\ UNCHANGED <<clientSent, clientTs, electionVars, configVars, leaderVars,
                   storeVars, outputVars, faults, historyVars>>

-------------------------------------------------------------------------------
\* Faults

\* Sync node n crashes and loses its volatile state; its term, vote and
\* configuration are on disk.
CrashSync(n) ==
    /\ faults < MaxFaults
    /\ syncUp[n]
    /\ syncUp' = [syncUp EXCEPT ![n] = FALSE]
    /\ role' = [role EXCEPT ![n] = "follower"]
    /\ votesGranted' = [votesGranted EXCEPT ![n] = {}]
    /\ preVotesGranted' = [preVotesGranted EXCEPT ![n] = {}]
    /\ ClearLeaderState(n)
    /\ leaderLog' = [leaderLog EXCEPT ![n] = <<>>]
    /\ leaderCommit' = [leaderCommit EXCEPT ![n] = 0]
    /\ clock' = [clock EXCEPT ![n] = 0]
    /\ clientTable' = [clientTable EXCEPT ![n] = [c \in Clients |-> 0]]
    /\ outputSeen' = [outputSeen EXCEPT ![n] = 0]
    /\ faults' = faults + 1
    /\ UNCHANGED <<currentTerm, votedFor, syncConfig, storeVars, outputVars,
                   clientVars, msgs, historyVars>>

\* Sync node n restarts as a follower.
RestartSync(n) ==
    /\ ~syncUp[n]
    /\ syncUp' = [syncUp EXCEPT ![n] = TRUE]
    /\ UNCHANGED <<currentTerm, role, votedFor, votesGranted, preVotesGranted,
                   configVars,
                   leaderVars, storeVars, outputVars, clientVars, netVars,
                   historyVars>>

\* Store node s crashes. Its log, commit index and installed epoch are on
\* disk; its primary bookkeeping is lost.
CrashStore(s) ==
    /\ faults < MaxFaults
    /\ storeStatus[s] /= "down"
    /\ storeStatus' = [storeStatus EXCEPT ![s] = "down"]
    /\ storeSynced' = [storeSynced EXCEPT ![s] = {}]
    /\ storeMatch' = [storeMatch EXCEPT ![s] = [b \in StoreNodes |-> 0]]
    /\ faults' = faults + 1
    /\ UNCHANGED <<storeLog, storeCommit, storeEpoch, storeTerm, storeConfig,
                   storeLeader, storeSyncedTo, electionVars, configVars, leaderVars,
                   outputVars, clientVars, msgs, historyVars>>

\* Store node s restarts outside the configuration and asks the other store
\* nodes for the committed log; the primary answers.
RestartStore(s) ==
    /\ storeStatus[s] = "down"
    /\ storeStatus' = [storeStatus EXCEPT ![s] = "rejoining"]
    /\ SendAll({[Msg("CatchUp", s, t) EXCEPT
                   !.epoch = storeEpoch[s], !.term = storeTerm[s]]
                : t \in StoreNodes \ {s}})
    /\ UNCHANGED <<storeLog, storeCommit, storeEpoch, storeTerm, storeConfig,
                   storeLeader, storeSynced, storeMatch, storeSyncedTo,
                   readyConfig, storeHigh, outputWriters>>
    /\ UpdateCommitted
    /\ UNCHANGED <<electionVars, configVars, leaderVars, outputVars,
                   clientVars, faults>>

\* The network loses one copy of message m.
DropMessage(m) ==
    /\ faults < MaxFaults
    /\ Discard(m)
    /\ faults' = faults + 1
    /\ UNCHANGED <<electionVars, configVars, leaderVars, storeVars, outputVars,
                   clientVars, historyVars>>

\* The network duplicates message m.
DuplicateMessage(m) ==
    /\ faults < MaxFaults
    /\ msgs[m] < MaxCopies
    /\ msgs' = [msgs EXCEPT ![m] = @ + 1]
    /\ faults' = faults + 1
    /\ UNCHANGED <<electionVars, configVars, leaderVars, storeVars, outputVars,
                   clientVars, historyVars>>

-------------------------------------------------------------------------------
\* Next-state relation

\* A store node delivers message m only while it is up; a sync node handler
\* checks syncUp itself. Messages to a crashed node wait in the network.
StoreUp(m) == m.dst \in StoreNodes /\ storeStatus[m.dst] /= "down"

Next ==
    \/ \E n \in SyncNodes : ElectionTimeout(n)
    \/ \E m \in DOMAIN msgs : HandlePreVote(m)
    \/ \E m \in DOMAIN msgs : HandlePreVoteReply(m)
    \/ \E m \in DOMAIN msgs : HandleRequestVote(m)
    \/ \E m \in DOMAIN msgs : HandleVoteReply(m)
    \/ \E n \in SyncNodes : BecomeLeader(n)
    \/ \E n \in SyncNodes : SendHeartbeats(n)
    \/ \E m \in DOMAIN msgs : HandleHeartbeat(m)
    \/ \E m \in DOMAIN msgs : HandleHeartbeatReply(m)
    \/ \E n \in SyncNodes : CheckQuorum(n)
    \/ \E n \in SyncNodes : ProposeConfig(n)
    \/ \E n \in SyncNodes : \E s \in StoreNodes : DetectStoreFailure(n, s)
    \/ \E n \in SyncNodes : InstallEpoch(n)
    \/ \E m \in DOMAIN msgs : StoreUp(m) /\ HandleNewEpoch(m)
    \/ \E m \in DOMAIN msgs : StoreUp(m) /\ HandleEpochSync(m)
    \/ \E m \in DOMAIN msgs : StoreUp(m) /\ HandleEpochSyncReply(m)
    \/ \E m \in DOMAIN msgs : HandleEpochReady(m)
    \/ \E m \in DOMAIN msgs : HandleClientRequest(m)
    \/ \E m \in DOMAIN msgs : StoreUp(m) /\ HandleWrite(m)
    \/ \E m \in DOMAIN msgs : StoreUp(m) /\ HandleReplicate(m)
    \/ \E m \in DOMAIN msgs : StoreUp(m) /\ HandleReplicateReply(m)
    \/ \E m \in DOMAIN msgs : StoreUp(m) /\ HandleCommit(m)
    \/ \E m \in DOMAIN msgs : HandleWriteAck(m)
    \/ \E m \in DOMAIN msgs : StoreUp(m) /\ HandleCatchUp(m)
    \/ \E m \in DOMAIN msgs : StoreUp(m) /\ HandleCatchUpReply(m)
    \/ \E n \in SyncNodes : AppendOutput(n)
    \/ \E c \in Clients : \E n \in SyncNodes : \E r \in 1..MaxRequests :
          ClientSend(c, n, r)
    \/ \E m \in DOMAIN msgs : HandleClientReply(m)
    \/ \E n \in SyncNodes : CrashSync(n)
    \/ \E n \in SyncNodes : RestartSync(n)
    \/ \E s \in StoreNodes : CrashStore(s)
    \/ \E s \in StoreNodes : RestartStore(s)
    \/ \E m \in DOMAIN msgs : DropMessage(m)
    \/ \E m \in DOMAIN msgs : DuplicateMessage(m)

Spec == Init /\ [][Next]_vars

-------------------------------------------------------------------------------
\* Safety invariants

\* At most one leader per term.
ElectionSafetyInv ==
    \A a, b \in SyncNodes :
        (role[a] = "leader" /\ role[b] = "leader"
            /\ currentTerm[a] = currentTerm[b]) => a = b

\* No store node accepts a write or a configuration from an older term or
\* epoch: the (epoch, leader term) a store node has installed never
\* decreases, no entry it holds is from a later epoch than its own, the
\* epochs of the entries along its log never decrease, and no leader
\* appended to the output file while the fence held a higher term.
EpochFencingInv ==
    /\ \A s \in StoreNodes :
          StampAtLeast([epoch |-> storeEpoch[s], term |-> storeTerm[s]],
                       storeHigh[s])
    /\ \A s \in StoreNodes : \A i \in 1..Len(storeLog[s]) :
          storeLog[s][i].epoch <= storeEpoch[s]
    /\ \A s \in StoreNodes : \A i \in 1..Len(storeLog[s]) - 1 :
          storeLog[s][i].epoch <= storeLog[s][i + 1].epoch
    /\ \A i \in 1..Len(outputWriters) :
          outputWriters[i].term >= outputWriters[i].fence

\* Every committed entry is on every store node of the current (ready)
\* configuration that has not restarted since.
CommittedOnAllInv ==
    \A s \in Holders(readyConfig, storeStatus) :
        /\ Len(storeLog[s]) >= Len(committed)
        /\ \A i \in 1..Len(committed) : storeLog[s][i] = committed[i]

\* Any two store nodes of the current configuration agree at every position
\* both hold, and every store node agrees with the committed log on its
\* committed prefix.
LogMatchingInv ==
    /\ \A a, b \in Holders(readyConfig, storeStatus) :
          \A i \in 1..Min(Len(storeLog[a]), Len(storeLog[b])) :
              storeLog[a][i] = storeLog[b][i]
    /\ \A s \in StoreNodes :
          /\ storeCommit[s] <= Len(storeLog[s])
          /\ \A i \in 1..Min(storeCommit[s], Len(committed)) :
                storeLog[s][i] = committed[i]

\* The output file is a prefix of the committed log.
OutputPrefixInv ==
    /\ Len(output) <= Len(committed)
    /\ \A i \in 1..Len(output) : output[i] = committed[i]

\* Lamport timestamps strictly increase along the committed log.
LamportOrderInv ==
    \A i \in 1..Len(committed) - 1 : committed[i].lamport < committed[i + 1].lamport

\* Each client's messages appear in the committed log in the order that
\* client sent them, each exactly once: the request ids of one client, read
\* along the log, are 1, 2, 3, ...
ClientOrderInv ==
    \A i \in 1..Len(committed) :
        committed[i].req =
            1 + Cardinality({j \in 1..(i - 1) :
                               committed[j].client = committed[i].client})

\* Every message acknowledged to a client is in the committed log and in the
\* output file.
AckedCommittedInv ==
    \A c \in Clients : \A r \in clientAcked[c] :
        /\ \E i \in 1..Len(committed) :
              committed[i].client = c /\ committed[i].req = r
        /\ \E i \in 1..Len(output) : output[i].client = c /\ output[i].req = r

-------------------------------------------------------------------------------
\* Liveness

\* Timeouts are random, so once faults stop one node times out first and the
\* others hear from it before their own timers fire. This action constraint
\* keeps a node from becoming a pre-candidate while another live node is a
\* pre-candidate or a candidate, or while a live leader holds its term or a
\* later one. Only LiveSpec uses it.
TimeoutsSpread ==
    \A n \in SyncNodes :
        (role'[n] = "precandidate" /\ role[n] /= "precandidate") =>
            \A o \in SyncNodes \ {n} :
                syncUp[o] => /\ role[o] \notin {"precandidate", "candidate"}
                             /\ (role[o] = "leader" => currentTerm[o] < currentTerm[n])

\* Every protocol action is weakly fair, per node and per message kind, so
\* that no node can starve one kind of message by handling another; faults
\* are not fair. (Each handler is written out: TLC 2.15 cannot evaluate
\* ENABLED through an operator passed as an argument.)
Fairness ==
    /\ \A n \in SyncNodes :
          /\ WF_vars(ElectionTimeout(n) /\ TimeoutsSpread)
          /\ WF_vars(BecomeLeader(n))
          /\ WF_vars(SendHeartbeats(n))
          /\ WF_vars(ProposeConfig(n))
          /\ WF_vars(InstallEpoch(n))
          /\ WF_vars(AppendOutput(n))
          /\ WF_vars(\E m \in DOMAIN msgs : m.dst = n /\ HandlePreVote(m))
          /\ WF_vars(\E m \in DOMAIN msgs : m.dst = n /\ HandlePreVoteReply(m))
          /\ WF_vars(\E m \in DOMAIN msgs : m.dst = n /\ HandleRequestVote(m))
          /\ WF_vars(\E m \in DOMAIN msgs : m.dst = n /\ HandleVoteReply(m))
          /\ WF_vars(\E m \in DOMAIN msgs : m.dst = n /\ HandleHeartbeat(m))
          /\ WF_vars(\E m \in DOMAIN msgs : m.dst = n /\ HandleHeartbeatReply(m))
          /\ WF_vars(\E m \in DOMAIN msgs : m.dst = n /\ HandleEpochReady(m))
          /\ WF_vars(\E m \in DOMAIN msgs : m.dst = n /\ HandleClientRequest(m))
          /\ WF_vars(\E m \in DOMAIN msgs : m.dst = n /\ HandleWriteAck(m))
    /\ \A s \in StoreNodes :
          /\ WF_vars(\E m \in DOMAIN msgs : m.dst = s /\ StoreUp(m) /\ HandleNewEpoch(m))
          /\ WF_vars(\E m \in DOMAIN msgs : m.dst = s /\ StoreUp(m) /\ HandleEpochSync(m))
          /\ WF_vars(\E m \in DOMAIN msgs : m.dst = s /\ StoreUp(m) /\ HandleEpochSyncReply(m))
          /\ WF_vars(\E m \in DOMAIN msgs : m.dst = s /\ StoreUp(m) /\ HandleWrite(m))
          /\ WF_vars(\E m \in DOMAIN msgs : m.dst = s /\ StoreUp(m) /\ HandleReplicate(m))
          /\ WF_vars(\E m \in DOMAIN msgs : m.dst = s /\ StoreUp(m) /\ HandleReplicateReply(m))
          /\ WF_vars(\E m \in DOMAIN msgs : m.dst = s /\ StoreUp(m) /\ HandleCommit(m))
          /\ WF_vars(\E m \in DOMAIN msgs : m.dst = s /\ StoreUp(m) /\ HandleCatchUp(m))
          /\ WF_vars(\E m \in DOMAIN msgs : m.dst = s /\ StoreUp(m) /\ HandleCatchUpReply(m))
    /\ \A c \in Clients :
          /\ WF_vars(\E m \in DOMAIN msgs : m.dst = c /\ HandleClientReply(m))
          /\ \A n \in SyncNodes : \A r \in 1..MaxRequests : WF_vars(ClientSend(c, n, r))

\* Once faults stop, a leader that hears from a majority keeps its role:
\* check-quorum steps a leader down only while some sync node is down. (A
\* fenced AppendOutput, where the fence holds a higher term, still does.)
QuorumCheckTimely ==
    \A n \in SyncNodes :
        (/\ role[n] = "leader" /\ role'[n] = "follower"
         /\ currentTerm'[n] = currentTerm[n] /\ fence <= currentTerm[n])
            => \E o \in SyncNodes : ~syncUp[o]

LiveSpec == Init /\ [][Next /\ TimeoutsSpread /\ QuorumCheckTimely]_vars /\ Fairness

\* Some sync node eventually becomes leader.
LeaderEventuallyElected == <>(\E n \in SyncNodes : role[n] = "leader")

\* Every request a client sends is eventually committed and acknowledged.
PendingWriteCommits ==
    \A c \in Clients : \A r \in 1..MaxRequests :
        (clientSent[c] >= r) ~> (r \in clientAcked[c])
===============================================================================
